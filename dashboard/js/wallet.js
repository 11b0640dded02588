// The member's key, in this page only: a keystore file (the wallet's own format, see
// `crates/keystore`) is opened here with its password, the key signs the login challenge and
// transactions here, and nothing of it is ever sent anywhere. A reload forgets it.

import { argon2idAsync } from '@noble/hashes/argon2.js';
import { pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { call, live } from './rpc.js';
import {
  addressBytes, addressOf, encodeSigned, encodeTransaction, fromHex, hex, transactionHash,
} from './encoding.js';

const utf8 = new TextEncoder();
const HARDENED = 0x80000000;
const PATH = [44, 7475, 0, 0];

let unlocked = null; // { address, name, seed }

/** The associated data of a keystore file: domain, version, name, address. */
function associatedData(file) {
  const name = utf8.encode(file.name);
  const address = addressBytes(file.address);
  const domain = utf8.encode('joule-keystore');
  const out = new Uint8Array(domain.length + 4 + 1 + name.length + 32);
  out.set(domain, 0);
  new DataView(out.buffer).setUint32(domain.length, file.version);
  out[domain.length + 4] = name.length;
  out.set(name, domain.length + 5);
  out.set(address, domain.length + 5 + name.length);
  return out;
}

function slip10(seed, path) {
  let node = hmac(sha512, utf8.encode('ed25519 seed'), seed);
  for (const index of path) {
    const data = new Uint8Array(37);
    data.set(node.slice(0, 32), 1);
    new DataView(data.buffer).setUint32(33, (index | HARDENED) >>> 0);
    node = hmac(sha512, node.slice(32), data);
  }
  return node.slice(0, 32);
}

/**
 * Opens a keystore file (its JSON text) with `password`: Argon2id with the file's parameters,
 * XChaCha20-Poly1305, then the BIP-39 seed and SLIP-0010 path of the account. Checks that the
 * key is the file's address.
 */
export async function openKeystore(text, password, onProgress) {
  let file;
  try {
    file = JSON.parse(text);
  } catch {
    throw new Error('this is not a keystore file (not JSON)');
  }
  if (file.version !== 1) throw new Error(`keystore version ${file.version} is not supported`);
  if (file.kdf?.algorithm !== 'argon2id' || file.cipher?.algorithm !== 'xchacha20poly1305') {
    throw new Error('this keystore file uses an unknown key derivation or cipher');
  }
  const { memory_kib: m, iterations: t, parallelism: p } = file.kdf;
  if (m > 1024 * 1024 || t > 64 || p > 16) throw new Error('the keystore asks for too much work');
  const key = await argon2idAsync(utf8.encode(password), fromHex(file.kdf.salt), {
    t, m, p, dkLen: 32, onProgress,
  });
  let plain;
  try {
    plain = xchacha20poly1305(key, fromHex(file.cipher.nonce), associatedData(file)).decrypt(fromHex(file.ciphertext));
  } catch {
    throw new Error(`wrong password for ${file.name}`);
  }
  const index = new DataView(plain.buffer, plain.byteOffset).getUint32(0);
  const phrase = new TextDecoder().decode(plain.slice(4)).normalize('NFKD');
  const bip39 = await pbkdf2Async(sha512, utf8.encode(phrase), utf8.encode('mnemonic'), { c: 2048, dkLen: 64 });
  const seed = slip10(bip39, [...PATH, index]);
  const address = addressOf(ed25519.getPublicKey(seed));
  if (address !== file.address) throw new Error('the keystore file does not match its address');
  unlocked = { address, name: file.name, seed };
  return { address, name: file.name };
}

/** The unlocked account, if any. */
export function account() {
  return unlocked ? { address: unlocked.address, name: unlocked.name } : null;
}

export function forget() {
  unlocked = null;
}

/** Logs the unlocked account in: the node's challenge, signed here. */
export async function login() {
  if (!unlocked) throw new Error('open your keystore file first');
  const challenge = await call('auth_challenge', [unlocked.address]);
  const signature = ed25519.sign(utf8.encode(challenge.text), unlocked.seed);
  const session = await call('auth_login', [unlocked.address, challenge.challenge, hex(signature)]);
  live.reopen();
  return session;
}

let chainId = null;

/**
 * Signs `payload` (shaped like the API's PayloadDto) as the unlocked account's next
 * transaction and submits it. Resolves to its hash once the node has it in the mempool;
 * `onStatus` hears `committed` with the receipt. A refusal rejects with the node's reason.
 */
export async function submit(payload, onStatus) {
  if (!unlocked) throw new Error('unlock your keystore to sign');
  chainId ??= (await call('node_status')).chain_id;
  const { next_nonce: nonce } = await call('account_get', [unlocked.address]);
  const encoded = encodeTransaction({ chain_id: chainId, sender: unlocked.address, nonce, payload });
  const signature = ed25519.sign(transactionHash(encoded), unlocked.seed);
  const hash = await call('tx_submit', [hex(encodeSigned(encoded, signature))]);
  if (onStatus) {
    const stop = live.subscribe('tx_subscribeStatus', [hash], 'tx_unsubscribeStatus', (status) => {
      if (status.status === 'committed') {
        stop();
        onStatus(status.tx);
      }
    });
  }
  return hash;
}

/** For tests: the hex of the signed transaction this wallet would submit. */
export function signedHex(tx) {
  if (!unlocked) throw new Error('unlock your keystore to sign');
  const encoded = encodeTransaction(tx);
  return hex(encodeSigned(encoded, ed25519.sign(transactionHash(encoded), unlocked.seed)));
}
