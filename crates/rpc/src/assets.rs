//! The dashboard's files, embedded at build time (see `build.rs`), served on `GET /` and below
//! with a strict Content-Security-Policy: the page may load and connect to nothing but this
//! node.

use primitives::Hash;
use std::sync::OnceLock;

/// Every served file: URL path and contents.
static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// A file to serve.
pub(crate) struct Asset {
    pub(crate) body: &'static [u8],
    pub(crate) content_type: &'static str,
    pub(crate) etag: String,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn etags() -> &'static Vec<String> {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, body)| {
                let digest = Hash::digest(b"joule/rpc/asset", &[body]);
                format!("\"{}\"", hex::encode(&digest.as_bytes()[..12]))
            })
            .collect()
    })
}

/// The file served at `path` (`/` is `/index.html`).
pub(crate) fn find(path: &str) -> Option<Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    let index = FILES.iter().position(|(url, _)| *url == path)?;
    let (url, body) = FILES.get(index)?;
    Some(Asset { body, content_type: content_type(url), etag: etags().get(index)?.clone() })
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |word, (index, byte)| word | (u32::from(*byte) << (16 - 8 * index)));
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (word >> (18 - 6 * position)) & 63;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Content-Security-Policy of the page: scripts, styles, images and connections from this
/// node only (the inline import map by its hash), no frames, no forms elsewhere.
pub(crate) fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let page = find("/index.html").map(|asset| asset.body).unwrap_or_default();
        let text = String::from_utf8_lossy(page);
        let import_map = text
            .split_once("<script type=\"importmap\">")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(map, _)| map)
            .unwrap_or("");
        let digest = <sha2::Sha256 as sha2::Digest>::digest(import_map.as_bytes());
        format!(
            "default-src 'none'; script-src 'self' 'sha256-{}'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            base64(&digest)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_page_its_scripts_and_the_vendored_libraries_are_embedded() {
        let index = find("/").expect("the page");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(std::str::from_utf8(index.body).unwrap().contains("/js/main.js"));
        for path in [
            "/js/main.js",
            "/app.css",
            "/vendor/uplot/uPlot.esm.js",
            "/vendor/noble-curves/ed25519.js",
        ] {
            assert!(find(path).is_some(), "{path}");
        }
        assert!(find("/js/nothing.js").is_none());
        assert!(FILES.iter().all(|(path, _)| !path.ends_with(".md") && !path.ends_with("LICENSE")));
        let policy = content_security_policy();
        assert!(
            policy.contains("script-src 'self' 'sha256-") && policy.contains("connect-src 'self'")
        );
    }

    /// The vendored files are exactly the ones whose checksums `dashboard/vendor/README.md`
    /// lists: an edited or added third-party file fails here until its entry is updated.
    #[test]
    fn the_vendored_files_match_their_written_checksums() {
        use sha2::Digest;
        let vendor =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboard/vendor");
        let readme = std::fs::read_to_string(vendor.join("README.md")).unwrap();
        let listed: std::collections::BTreeMap<String, String> = readme
            .lines()
            .filter_map(|line| line.split_once("  ./"))
            .map(|(sum, path)| (path.to_owned(), sum.to_owned()))
            .collect();
        let mut found = std::collections::BTreeMap::new();
        let mut stack = vec![vendor.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|name| name != "README.md") {
                    let relative =
                        path.strip_prefix(&vendor).unwrap().to_string_lossy().into_owned();
                    found.insert(
                        relative,
                        hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap())),
                    );
                }
            }
        }
        assert!(found.len() > 20, "{found:?}");
        assert_eq!(found, listed);
    }
}
