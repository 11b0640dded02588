use super::*;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery staple";

fn keystore() -> (TempDir, Keystore) {
    let temporary = tempfile::tempdir().unwrap();
    let keystore = Keystore::open(&temporary.path().join("keys")).unwrap();
    (temporary, keystore)
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn create(keystore: &Keystore, name: &str, seed: u64) -> (StoredAccount, Zeroizing<String>) {
    keystore.create(name, PASSWORD, KdfParams::light(), rng(seed)).unwrap()
}

/// Rewrites the JSON of `account`'s file with `edit`.
fn edit_file(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut document: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut document);
    fs::write(path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
}

#[test]
fn create_then_unlock_gives_the_key_of_the_stored_address() {
    let (_temporary, keystore) = keystore();
    let (account, phrase) = create(&keystore, "alice", 1);
    assert_eq!(account.name, "alice");
    assert_eq!(account.path, keystore.dir().join("alice.json"));
    assert_eq!(phrase.split(' ').count(), 24);

    let key = keystore.unlock(&account, PASSWORD).unwrap();
    assert_eq!(Address(key.public_key()), account.address);
    assert_eq!(key.seed(), key_from_mnemonic(&phrase, 0).unwrap().seed());
    assert_eq!(*keystore.export_mnemonic(&account, PASSWORD).unwrap(), *phrase);

    // The listing, read back from disk, agrees.
    assert_eq!(keystore.list().unwrap(), vec![account.clone()]);
    assert_eq!(keystore.find("alice").unwrap(), account);
    assert_eq!(keystore.find(&account.address.to_string()).unwrap(), account);

    // The same seed gives the same phrase: the RNG really is the caller's.
    let (_other_temporary, other) = self::keystore();
    let (_, same_phrase) = create(&other, "alice", 1);
    assert_eq!(*same_phrase, *phrase);
}

#[test]
fn the_file_has_the_documented_layout() {
    let (_temporary, keystore) = keystore();
    let (account, phrase) = create(&keystore, "alice", 2);
    let text = fs::read_to_string(&account.path).unwrap();
    assert!(!text.contains(phrase.as_str()), "the phrase is stored in the clear");
    let document: Value = serde_json::from_str(&text).unwrap();
    let light = KdfParams::light();
    assert_eq!(document["version"], 1);
    assert_eq!(document["name"], "alice");
    assert_eq!(document["address"], account.address.to_string());
    assert_eq!(document["kdf"]["algorithm"], "argon2id");
    assert_eq!(document["kdf"]["memory_kib"], light.memory_kib);
    assert_eq!(document["kdf"]["iterations"], light.iterations);
    assert_eq!(document["kdf"]["parallelism"], light.parallelism);
    assert_eq!(document["kdf"]["salt"].as_str().unwrap().len(), 32);
    assert_eq!(document["cipher"]["algorithm"], "xchacha20poly1305");
    assert_eq!(document["cipher"]["nonce"].as_str().unwrap().len(), 48);
    // Index (4) + phrase + tag (16), hex-encoded.
    let ciphertext = document["ciphertext"].as_str().unwrap();
    assert_eq!(ciphertext.len(), 2 * (4 + phrase.len() + 16));
    assert!(document["created_ms"].as_u64().unwrap() > 1_600_000_000_000);
    // Nothing is left behind but the account file.
    let names: Vec<_> =
        fs::read_dir(keystore.dir()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(names, vec!["alice.json"]);
}

#[test]
fn standard_parameters_work() {
    let (_temporary, keystore) = keystore();
    let (account, _) = keystore.create("real", PASSWORD, KdfParams::standard(), rng(3)).unwrap();
    let key = keystore.unlock(&account, PASSWORD).unwrap();
    assert_eq!(Address(key.public_key()), account.address);
}

#[test]
fn a_wrong_password_is_refused_with_a_clear_error() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 4);
    for wrong in ["", "correct horse battery stapl", "Correct horse battery staple"] {
        let error = keystore.unlock(&account, wrong).unwrap_err();
        assert!(matches!(error, KeystoreError::WrongPassword { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("wrong password") && message.contains("'alice'"), "{message}");
        assert!(message.contains("alice.json"), "{message}");
        assert!(matches!(
            keystore.export_mnemonic(&account, wrong),
            Err(KeystoreError::WrongPassword { .. })
        ));
    }
}

#[test]
fn export_then_import_elsewhere_restores_the_same_address() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 5);
    let phrase = keystore.export_mnemonic(&account, PASSWORD).unwrap();

    let (_other_temporary, other) = self::keystore();
    let imported =
        other.import("restored", &phrase, "another password", KdfParams::light(), rng(6)).unwrap();
    assert_eq!(imported.address, account.address);
    assert_eq!(imported.name, "restored");
    let key = other.unlock(&imported, "another password").unwrap();
    assert_eq!(key.seed(), keystore.unlock(&account, PASSWORD).unwrap().seed());
    // Fresh salt and nonce: the two files share no ciphertext.
    let original: Value = serde_json::from_slice(&fs::read(&account.path).unwrap()).unwrap();
    let copy: Value = serde_json::from_slice(&fs::read(&imported.path).unwrap()).unwrap();
    assert_ne!(original["kdf"]["salt"], copy["kdf"]["salt"]);
    assert_ne!(original["ciphertext"], copy["ciphertext"]);
}

#[test]
fn an_edited_address_makes_decryption_fail() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 7);
    let (other_account, _) = create(&keystore, "bob", 8);
    // Point alice's file at bob's address, as an attacker redirecting payments would.
    edit_file(&account.path, |document| {
        document["address"] = Value::String(other_account.address.to_string());
    });
    let edited = keystore.find("alice").unwrap();
    assert_eq!(edited.address, other_account.address);
    assert!(matches!(keystore.unlock(&edited, PASSWORD), Err(KeystoreError::WrongPassword { .. })));
    // The account as listed before the edit no longer matches its file.
    assert!(matches!(keystore.unlock(&account, PASSWORD), Err(KeystoreError::StaleAccount { .. })));
}

#[test]
fn an_edited_ciphertext_makes_decryption_fail() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 9);
    for position in [0, 10, 200] {
        let original = fs::read(&account.path).unwrap();
        edit_file(&account.path, |document| {
            let mut bytes = hex::decode(document["ciphertext"].as_str().unwrap()).unwrap();
            let position = position.min(bytes.len() - 1);
            bytes[position] ^= 0x01;
            document["ciphertext"] = Value::String(hex::encode(bytes));
        });
        assert!(matches!(
            keystore.unlock(&account, PASSWORD),
            Err(KeystoreError::WrongPassword { .. })
        ));
        fs::write(&account.path, original).unwrap();
    }
    // Restored, it opens again: the failures above were the edits.
    keystore.unlock(&account, PASSWORD).unwrap();
}

#[test]
fn an_edited_name_makes_decryption_fail() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 10);
    // Renaming the file alone is caught without the password.
    let renamed_path = keystore.dir().join("mallory.json");
    fs::rename(&account.path, &renamed_path).unwrap();
    let error = keystore.list().unwrap_err();
    assert!(matches!(error, KeystoreError::Malformed { .. }), "{error}");
    assert!(error.to_string().contains("mallory.json"), "{error}");
    // Renaming the file and the name inside is caught by the authentication tag.
    edit_file(&renamed_path, |document| document["name"] = Value::String("mallory".into()));
    let renamed = keystore.find("mallory").unwrap();
    assert!(matches!(
        keystore.unlock(&renamed, PASSWORD),
        Err(KeystoreError::WrongPassword { .. })
    ));
}

#[test]
fn an_edited_version_is_refused() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 11);
    edit_file(&account.path, |document| document["version"] = Value::from(2));
    let error = keystore.find("alice").unwrap_err();
    assert!(matches!(error, KeystoreError::UnsupportedVersion { version: 2, .. }), "{error}");
}

#[test]
fn hostile_kdf_parameters_are_refused_before_any_work() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 12);
    let original = fs::read(&account.path).unwrap();
    let hostile: [(&str, Value); 5] = [
        ("memory_kib", Value::from(u32::MAX)),
        ("memory_kib", Value::from(KdfParams::MAX_MEMORY_KIB + 1)),
        ("memory_kib", Value::from(0)),
        ("iterations", Value::from(u32::MAX)),
        ("parallelism", Value::from(1000)),
    ];
    for (field, value) in hostile {
        edit_file(&account.path, |document| document["kdf"][field] = value.clone());
        let error = keystore.unlock(&account, PASSWORD).unwrap_err();
        assert!(matches!(error, KeystoreError::FileKdfParams { .. }), "{field}={value}: {error}");
        let message = error.to_string();
        assert!(message.contains("alice.json") && message.contains(field), "{message}");
        fs::write(&account.path, &original).unwrap();
    }
    edit_file(&account.path, |document| document["kdf"]["algorithm"] = "argon2d".into());
    let error = keystore.unlock(&account, PASSWORD).unwrap_err();
    assert!(matches!(error, KeystoreError::FileKdfParams { .. }), "{error}");
    // A memory value that does not even fit the field is a parse error, not an allocation.
    edit_file(&account.path, |document| document["kdf"]["memory_kib"] = Value::from(u64::MAX));
    assert!(matches!(keystore.find("alice"), Err(KeystoreError::Malformed { .. })));
}

#[test]
fn bad_parameters_from_the_caller_are_refused() {
    let (_temporary, keystore) = keystore();
    assert_eq!(KdfParams::standard().validate(), Ok(()));
    assert_eq!(KdfParams::light().validate(), Ok(()));
    let too_big = KdfParams { memory_kib: 4 * 1024 * 1024, ..KdfParams::standard() };
    let error = keystore.create("alice", PASSWORD, too_big, rng(13)).unwrap_err();
    assert!(matches!(error, KeystoreError::KdfParams(KdfParamsError::Memory { .. })), "{error}");
    let error = keystore.create("alice", "", KdfParams::light(), rng(13)).unwrap_err();
    assert!(matches!(error, KeystoreError::EmptyPassword), "{error}");
    assert!(keystore.list().unwrap().is_empty());
}

#[test]
fn a_duplicate_name_is_refused() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 14);
    let error = keystore.create("alice", PASSWORD, KdfParams::light(), rng(15)).unwrap_err();
    assert!(
        matches!(error, KeystoreError::NameTaken { ref name, .. } if name == "alice"),
        "{error}"
    );
    // The original is untouched.
    assert_eq!(Address(keystore.unlock(&account, PASSWORD).unwrap().public_key()), account.address);

    let phrase = key_phrase(15);
    let error =
        keystore.import("alice", &phrase, PASSWORD, KdfParams::light(), rng(16)).unwrap_err();
    assert!(matches!(error, KeystoreError::NameTaken { .. }), "{error}");
}

/// A valid phrase that no keystore in these tests holds.
fn key_phrase(seed: u64) -> Zeroizing<String> {
    derive::phrase_of(&derive::generate_mnemonic(rng(seed)))
}

#[test]
fn a_duplicate_address_is_refused_and_the_holder_named() {
    let (_temporary, keystore) = keystore();
    let (_, phrase) = create(&keystore, "alice", 17);
    let error =
        keystore.import("alice2", &phrase, PASSWORD, KdfParams::light(), rng(18)).unwrap_err();
    assert!(
        matches!(error, KeystoreError::AddressTaken { ref existing, .. } if existing == "alice"),
        "{error}"
    );
    assert!(error.to_string().contains("'alice'"), "{error}");
    assert_eq!(keystore.list().unwrap().len(), 1);
}

#[test]
fn a_bad_recovery_phrase_is_refused() {
    let (_temporary, keystore) = keystore();
    let phrase = key_phrase(19);
    let mut words: Vec<&str> = phrase.split(' ').collect();
    // Replace the checksum-carrying last word with other valid words until one fails the check.
    let mut refused = 0;
    for replacement in ["abandon", "zoo", "wrong", "legal", "letter"] {
        if replacement == words[23] {
            continue;
        }
        words[23] = replacement;
        match keystore.import("alice", &words.join(" "), PASSWORD, KdfParams::light(), rng(20)) {
            Err(KeystoreError::MnemonicChecksum) => refused += 1,
            Err(error) => panic!("unexpected error: {error}"),
            // 1 in 256 replacements happens to have a valid checksum.
            Ok(account) => fs::remove_file(account.path).unwrap(),
        }
    }
    assert!(refused >= 3, "only {refused} wrong checksums refused");
    let error = keystore
        .import("alice", "abandon ability able", PASSWORD, KdfParams::light(), rng(20))
        .unwrap_err();
    assert!(matches!(error, KeystoreError::MnemonicWordCount { found: 3 }), "{error}");
    assert!(keystore.list().unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 21);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&account.path), 0o600);
    assert_eq!(mode(keystore.dir()), 0o700);
}

#[test]
fn list_is_sorted_and_reports_unreadable_files() {
    let (_temporary, keystore) = keystore();
    for (seed, name) in [(22, "carol"), (23, "alice"), (24, "bob-2"), (25, "bob_1")] {
        create(&keystore, name, seed);
    }
    // Files that are not accounts are ignored.
    fs::write(keystore.dir().join("README.txt"), "notes").unwrap();
    fs::write(keystore.dir().join(".alice.json.tmp"), "half-written").unwrap();
    let names: Vec<String> =
        keystore.list().unwrap().into_iter().map(|account| account.name).collect();
    assert_eq!(names, ["alice", "bob-2", "bob_1", "carol"]);

    fs::write(keystore.dir().join("broken.json"), "{ not json").unwrap();
    let error = keystore.list().unwrap_err();
    assert!(matches!(error, KeystoreError::Malformed { .. }), "{error}");
    assert!(error.to_string().contains("broken.json"), "{error}");
    // An account can still be found by name.
    assert_eq!(keystore.find("carol").unwrap().name, "carol");
}

#[test]
fn find_by_name_or_address() {
    let (_temporary, keystore) = keystore();
    let (account, _) = create(&keystore, "alice", 26);
    assert_eq!(keystore.find(" alice\n").unwrap(), account);
    assert!(matches!(keystore.find("bob"), Err(KeystoreError::NotFound { .. })));

    let unknown = Address(key_from_mnemonic(&key_phrase(27), 0).unwrap().public_key());
    let error = keystore.find(&unknown.to_string()).unwrap_err();
    assert!(matches!(error, KeystoreError::NotFound { .. }), "{error}");

    let mut typo: Vec<char> = account.address.to_string().chars().collect();
    typo[12] = if typo[12] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    let error = keystore.find(&typo).unwrap_err();
    assert!(matches!(error, KeystoreError::BadQuery { .. }), "{error}");
    assert!(matches!(keystore.find("Alice"), Err(KeystoreError::BadQuery { .. })));
}

#[test]
fn account_names_follow_the_rule() {
    let (_temporary, keystore) = keystore();
    let longest = "a".repeat(MAX_NAME_LEN);
    for good in ["a", "0", "alice_2", "meter-17", longest.as_str()] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    let too_long = "a".repeat(MAX_NAME_LEN + 1);
    for bad in ["", "Alice", "al ice", "../alice", "alice.json", "é", too_long.as_str()] {
        let error = keystore.create(bad, PASSWORD, KdfParams::light(), rng(28)).unwrap_err();
        assert!(matches!(error, KeystoreError::InvalidName { .. }), "{bad}: {error}");
    }
    assert!(keystore.list().unwrap().is_empty());
}

#[test]
fn password_files() {
    let temporary = tempfile::tempdir().unwrap();
    let path = temporary.path().join("password");
    for (contents, expected) in [
        ("secret\n", "secret"),
        ("secret", "secret"),
        ("secret\r\n", "secret"),
        (" spaced out \nsecond line\n", " spaced out "),
    ] {
        fs::write(&path, contents).unwrap();
        assert_eq!(*read_password_file(&path).unwrap(), expected, "{contents:?}");
    }
    for contents in ["", "\n", "\r\nsecret\n"] {
        fs::write(&path, contents).unwrap();
        let error = read_password_file(&path).unwrap_err();
        assert!(matches!(error, KeystoreError::PasswordFile { .. }), "{contents:?}: {error}");
        assert!(error.to_string().contains("empty"), "{error}");
    }
    let error = read_password_file(&temporary.path().join("missing")).unwrap_err();
    assert!(matches!(error, KeystoreError::Io { .. }), "{error}");
    assert!(error.to_string().contains("missing"), "{error}");
}
