//! What the store's test binaries share.

use primitives::{Address, Height};
use store::Reader;

/// Checks an account's history, newest first, read whole and in pages of `page`.
pub(crate) fn assert_history(
    reader: &Reader,
    account: &Address,
    expected: &[(Height, u32)],
    page: usize,
) {
    let whole: Vec<(Height, u32)> = reader
        .history(account, None, 100_000)
        .unwrap()
        .iter()
        .map(|entry| (entry.height, entry.index))
        .collect();
    assert_eq!(whole, expected, "history of {account}");
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let entries = reader.history(account, before, page).unwrap();
        let Some(last) = entries.last() else { break };
        before = Some((last.height, last.index));
        paged.extend(entries.iter().map(|entry| (entry.height, entry.index)));
    }
    assert_eq!(paged, expected, "paged history of {account}");
}
