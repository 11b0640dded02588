//! The accounts map, kept small: a community chain may hold a million accounts, and every node
//! keeps all of them in memory.
//!
//! Most accounts only ever hold a balance and a nonce. Those two live in the main map, packed
//! into 24 bytes beside the 32-byte address; the four counters that trading and certificates
//! use (reserved, arrears, certificates, retired) live in a second map that holds only the
//! accounts where one of them is not zero. An [`Account`] with `std`'s layout takes 112 bytes
//! per entry.

use crate::types::Account;
use primitives::{Address, Amount, Nonce};
use std::collections::HashMap;

/// A balance and a nonce without `u128`'s 16-byte alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Core {
    balance: [u64; 2],
    nonce: u64,
}

/// The counters that most accounts leave at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extra {
    reserved: Amount,
    arrears: Amount,
    certificates: u64,
    retired: u64,
}

impl Extra {
    fn of(account: &Account) -> Option<Extra> {
        let extra = Extra {
            reserved: account.reserved,
            arrears: account.arrears,
            certificates: account.certificates,
            retired: account.retired,
        };
        (extra != Extra::ZERO).then_some(extra)
    }

    const ZERO: Extra =
        Extra { reserved: Amount::ZERO, arrears: Amount::ZERO, certificates: 0, retired: 0 };
}

fn split(balance: Amount) -> [u64; 2] {
    let low = u64::try_from(balance.0 & u128::from(u64::MAX)).unwrap_or_default();
    let high = u64::try_from(balance.0 >> 64).unwrap_or_default();
    [low, high]
}

fn join([low, high]: [u64; 2]) -> Amount {
    Amount((u128::from(high) << 64) | u128::from(low))
}

/// Every account that exists, by address. Two are equal when they hold the same accounts: an
/// account is in `extras` exactly when one of its counters is not zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accounts {
    cores: HashMap<Address, Core>,
    extras: HashMap<Address, Extra>,
}

impl Accounts {
    /// The account at `address`, if it exists.
    pub(crate) fn get(&self, address: &Address) -> Option<Account> {
        self.cores.get(address).map(|core| self.whole(address, core))
    }

    /// The account whose balance and nonce are `core`, with its counters.
    fn whole(&self, address: &Address, core: &Core) -> Account {
        let extra = self.extras.get(address).copied().unwrap_or(Extra::ZERO);
        Account {
            balance: join(core.balance),
            nonce: Nonce(core.nonce),
            reserved: extra.reserved,
            arrears: extra.arrears,
            certificates: extra.certificates,
            retired: extra.retired,
        }
    }

    /// Sets the account at `address`.
    pub(crate) fn insert(&mut self, address: Address, account: Account) {
        self.cores
            .insert(address, Core { balance: split(account.balance), nonce: account.nonce.0 });
        match Extra::of(&account) {
            Some(extra) => {
                self.extras.insert(address, extra);
            }
            None => {
                self.extras.remove(&address);
            }
        }
    }

    /// Removes the account at `address`.
    pub(crate) fn remove(&mut self, address: &Address) {
        self.cores.remove(address);
        self.extras.remove(address);
    }

    /// Every address, in no particular order.
    pub(crate) fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.cores.keys()
    }

    /// Every account, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Address, Account)> {
        self.cores.iter().map(|(address, core)| (address, self.whole(address, core)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(byte: u8) -> Address {
        Address(primitives::PublicKey([byte; 32]))
    }

    #[test]
    fn accounts_come_back_as_they_were_put_and_extras_go_when_they_are_zero() {
        let mut accounts = Accounts::default();
        let plain =
            Account { balance: Amount(u128::MAX - 5), nonce: Nonce(7), ..Account::default() };
        let trader = Account {
            balance: Amount(1 << 70),
            nonce: Nonce(u64::MAX),
            reserved: Amount(3),
            arrears: Amount(u128::MAX),
            certificates: 9,
            retired: 2,
        };
        accounts.insert(address(1), plain);
        accounts.insert(address(2), trader);
        assert_eq!(accounts.get(&address(1)), Some(plain));
        assert_eq!(accounts.get(&address(2)), Some(trader));
        assert_eq!(accounts.get(&address(3)), None);
        assert_eq!(accounts.extras.len(), 1);

        // Its counters back at zero: the account leaves the second map.
        let settled = Account {
            reserved: Amount::ZERO,
            arrears: Amount::ZERO,
            certificates: 0,
            retired: 0,
            ..trader
        };
        accounts.insert(address(2), settled);
        assert_eq!(accounts.get(&address(2)), Some(settled));
        assert!(accounts.extras.is_empty());

        accounts.insert(address(2), trader);
        accounts.remove(&address(2));
        assert_eq!(accounts.get(&address(2)), None);
        assert!(accounts.extras.is_empty());
        let mut all: Vec<(Address, Account)> =
            accounts.iter().map(|(address, account)| (*address, account)).collect();
        all.sort_by_key(|(address, _)| *address);
        assert_eq!(all, vec![(address(1), plain)]);
    }

    #[test]
    fn an_entry_takes_56_bytes() {
        assert_eq!(std::mem::size_of::<(Address, Core)>(), 56);
        assert_eq!(std::mem::size_of::<(Address, Account)>(), 112);
    }
}
