//! Moving tokens: spending, receiving (which repays arrears first), reserving for bids, and
//! charging for energy (which may leave arrears).

use crate::{error::TxError, state::State};
use primitives::{Address, Amount};

impl State {
    /// Takes `amount` from what `address` may spend. Refused while the account is in arrears or
    /// short.
    pub(crate) fn spend(&mut self, address: Address, amount: Amount) -> Result<(), TxError> {
        if amount.is_zero() {
            return Err(TxError::ZeroAmount);
        }
        let mut account = self.account(&address);
        if !account.arrears.is_zero() {
            return Err(TxError::InArrears(account.arrears));
        }
        account.balance = account
            .balance
            .checked_sub(amount)
            .ok_or(TxError::InsufficientBalance { balance: account.balance, needed: amount })?;
        self.set_account(address, account);
        Ok(())
    }

    /// Gives `amount` to `address`: it repays the account's arrears first, the rest is added to
    /// its balance.
    pub(crate) fn receive(&mut self, address: Address, amount: Amount) -> Result<(), TxError> {
        if amount.is_zero() {
            return Ok(());
        }
        let mut account = self.account(&address);
        let repaid = amount.min(account.arrears);
        account.arrears = account.arrears.checked_sub(repaid).unwrap_or(Amount::ZERO);
        let rest = amount.checked_sub(repaid).unwrap_or(Amount::ZERO);
        account.balance = account.balance.checked_add(rest).ok_or(TxError::BalanceOverflow)?;
        self.set_account(address, account);
        Ok(())
    }

    /// Moves `amount` from the balance to the reservation (for a bid).
    pub(crate) fn reserve(&mut self, address: Address, amount: Amount) -> Result<(), TxError> {
        self.spend(address, amount)?;
        let mut account = self.account(&address);
        account.reserved = account.reserved.checked_add(amount).ok_or(TxError::BalanceOverflow)?;
        self.set_account(address, account);
        Ok(())
    }

    /// Returns `amount` of the reservation to the account, as if received (arrears first).
    pub(crate) fn release(&mut self, address: Address, amount: Amount) {
        if amount.is_zero() {
            return;
        }
        let mut account = self.account(&address);
        let released = amount.min(account.reserved);
        account.reserved = account.reserved.checked_sub(released).unwrap_or(Amount::ZERO);
        self.set_account(address, account);
        // Receiving back what was reserved cannot overflow: it was part of the balance.
        let _ = self.receive(address, released);
    }

    /// Pays `amount` out of the account's reservation (the payee is credited separately).
    pub(crate) fn pay_from_reservation(&mut self, address: Address, amount: Amount) {
        if amount.is_zero() {
            return;
        }
        let mut account = self.account(&address);
        account.reserved = account.reserved.checked_sub(amount).unwrap_or(Amount::ZERO);
        self.set_account(address, account);
    }

    /// Charges `amount` for energy: the balance pays what it can, the rest becomes arrears.
    /// Returns the arrears added.
    pub(crate) fn charge(&mut self, address: Address, amount: Amount) -> Amount {
        if amount.is_zero() {
            return Amount::ZERO;
        }
        let mut account = self.account(&address);
        let paid = amount.min(account.balance);
        account.balance = account.balance.checked_sub(paid).unwrap_or(Amount::ZERO);
        let owed = amount.checked_sub(paid).unwrap_or(Amount::ZERO);
        account.arrears = Amount(account.arrears.0.saturating_add(owed.0));
        self.set_account(address, account);
        owed
    }
}
