//! Who decides the heights after the head: the snapshot the core publishes after every commit
//! for the other tasks (the engine's relay check of peers' messages, the API).

use ledger::{State, ValidatorChange};
use primitives::{ChainConfig, Height, Validator};
use std::{
    borrow::Cow,
    sync::{Arc, RwLock},
};

/// The validators of the height after the head and, if an operator installed a new set, the
/// height it takes over at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSchedule {
    /// The height after the head.
    pub next_height: Height,
    /// The validators of `next_height`.
    pub current: Vec<Validator>,
    /// A set installed for a later height.
    pub upcoming: Option<ValidatorChange>,
}

impl ValidatorSchedule {
    /// The schedule of `state`, whose last block is `head`.
    pub fn of(state: &State, head: Height) -> ValidatorSchedule {
        let next_height = Height(head.0.saturating_add(1));
        ValidatorSchedule {
            next_height,
            current: state.validators_at(next_height).to_vec(),
            upcoming: state.next_validators().filter(|change| change.from > next_height).cloned(),
        }
    }

    /// The validators of `height`, as far as this schedule knows.
    pub fn at(&self, height: Height) -> &[Validator] {
        match &self.upcoming {
            Some(change) if change.from <= height => &change.validators,
            _ => &self.current,
        }
    }

    /// Whether [`ValidatorSchedule::at`] is exact for `height`: a change is committed at least
    /// two heights before it takes over, so the next two heights are known.
    pub fn knows(&self, height: Height) -> bool {
        height >= self.next_height && height.0 <= self.next_height.0.saturating_add(1)
    }

    /// Whether `key` validates at `height`.
    pub fn is_validator(&self, height: Height, key: &primitives::PublicKey) -> bool {
        self.at(height).iter().any(|validator| validator.key == *key)
    }
}

impl consensus::ValidatorView for ValidatorSchedule {
    fn at(&self, height: Height) -> &[Validator] {
        ValidatorSchedule::at(self, height)
    }

    fn knows(&self, height: Height) -> bool {
        ValidatorSchedule::knows(self, height)
    }
}

/// The chain configuration as it applies to `height` (the state's last block or a later one):
/// with that height's validators.
pub(crate) fn config_at(state: &State, height: Height) -> Cow<'_, ChainConfig> {
    let config = state.config();
    let validators = state.validators_at(height);
    if std::ptr::eq(validators, config.validators.as_slice()) {
        Cow::Borrowed(config)
    } else {
        Cow::Owned(ChainConfig { validators: validators.to_vec(), ..config.clone() })
    }
}

/// The latest schedule: the manager replaces it after every commit, other tasks read it.
#[derive(Debug)]
pub(crate) struct PublishedSchedule(RwLock<Arc<ValidatorSchedule>>);

impl PublishedSchedule {
    pub(crate) fn new(schedule: Arc<ValidatorSchedule>) -> PublishedSchedule {
        PublishedSchedule(RwLock::new(schedule))
    }

    /// The schedule as of the last commit. (The value is only ever replaced whole, so a
    /// poisoned lock still holds a consistent one.)
    pub(crate) fn get(&self) -> Arc<ValidatorSchedule> {
        match self.0.read() {
            Ok(schedule) => schedule.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set(&self, schedule: Arc<ValidatorSchedule>) {
        match self.0.write() {
            Ok(mut published) => *published = schedule,
            Err(poisoned) => *poisoned.into_inner() = schedule,
        }
    }
}
