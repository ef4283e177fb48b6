//! Credits: a key's balance, and the credits one call holds from admission until it is
//! charged (it completed) or released (it failed, was dropped or expired).

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// What keys without a balance show as theirs.
pub const UNLIMITED_CREDITS: f64 = 1_000_000.0;

/// Credits charged for a call: its cost and the balance left after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Charge {
    pub cost: f64,
    pub remaining: f64,
}

/// Credits held for a job, settled when it ends: [`Settle::charge`] when it completes, a drop
/// when it does not.
pub trait Settle: Send + Sync {
    fn charge(self: Box<Self>) -> Charge;
}

/// A credit balance: paid and free credits (free ones are spent first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub credits: f64,
    #[serde(rename = "free-credits")]
    pub free_credits: f64,
}

impl Balance {
    pub fn total(self) -> f64 {
        self.credits + self.free_credits
    }
}

#[derive(Debug)]
struct Ledger {
    balance: Balance,
    /// Held by admitted, unfinished calls.
    reserved: f64,
}

/// A balance with reservations: a call reserves its cost at admission, and is charged once
/// when it completes or released when it fails. The balance never goes below zero.
#[derive(Debug)]
pub struct Wallet {
    initial: Balance,
    ledger: Mutex<Ledger>,
}

impl Wallet {
    pub fn new(initial: Balance) -> Self {
        Wallet {
            initial,
            ledger: Mutex::new(Ledger {
                balance: initial,
                reserved: 0.0,
            }),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn balance(&self) -> Balance {
        self.ledger().balance
    }

    /// Credits not already held by running calls.
    fn available(ledger: &Ledger) -> f64 {
        ledger.balance.total() - ledger.reserved
    }

    /// Adds `amount` (negative takes away, down to what running calls hold).
    pub fn adjust(&self, amount: f64) -> Balance {
        let mut ledger = self.ledger();
        let amount = amount.max(-Self::available(&ledger));
        let from_free = (-amount).clamp(0.0, ledger.balance.free_credits);
        ledger.balance.free_credits -= from_free;
        ledger.balance.credits += amount + from_free;
        ledger.balance
    }

    /// Back to the configured balance (admin reset; running calls still hold their share).
    pub fn reset(&self) {
        self.ledger().balance = self.initial;
    }
}

/// Credits held for one call. Dropping it releases them; [`Hold::charge`] spends them.
#[derive(Debug)]
pub struct Hold {
    wallet: Arc<Wallet>,
    amount: f64,
}

impl Hold {
    /// Reserves `amount` from the wallet, or returns the balance when it is short.
    pub fn reserve(wallet: &Arc<Wallet>, amount: f64) -> Result<Hold, Balance> {
        let mut ledger = wallet.ledger();
        if Wallet::available(&ledger) + 1e-9 < amount {
            return Err(ledger.balance);
        }
        ledger.reserved += amount;
        Ok(Hold {
            wallet: wallet.clone(),
            amount,
        })
    }

    /// Spends the held credits; returns the balance after.
    pub fn charge(mut self) -> Balance {
        // Spent: the drop at the end releases nothing.
        let amount = std::mem::take(&mut self.amount);
        let mut ledger = self.wallet.ledger();
        ledger.reserved -= amount;
        let from_free = amount.min(ledger.balance.free_credits);
        ledger.balance.free_credits -= from_free;
        ledger.balance.credits = (ledger.balance.credits - (amount - from_free)).max(0.0);
        let balance = ledger.balance;
        drop(ledger);
        balance
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.wallet.ledger().reserved -= self.amount;
    }
}

impl Hold {
    /// Spends the held credits; returns what they cost and the balance left.
    pub fn settle(self) -> Charge {
        let cost = self.amount;
        Charge {
            cost,
            remaining: self.charge().total(),
        }
    }
}

impl Settle for Hold {
    fn charge(self: Box<Self>) -> Charge {
        self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_reserve_charge_and_release() {
        let wallet = Arc::new(Wallet::new(Balance {
            credits: 2.0,
            free_credits: 1.0,
        }));
        let first = Hold::reserve(&wallet, 1.5).unwrap();
        let second = Hold::reserve(&wallet, 1.5).unwrap();
        assert!(Hold::reserve(&wallet, 0.5).is_err(), "3 available, 3 held");
        drop(second); // released
        let after = first.charge();
        assert_eq!(
            after,
            Balance {
                credits: 1.5,
                free_credits: 0.0
            },
            "free credits go first"
        );
        assert_eq!(
            wallet.adjust(-10.0),
            Balance {
                credits: 0.0,
                free_credits: 0.0
            }
        );
        assert!(Hold::reserve(&wallet, 0.1).is_err());
        wallet.reset();
        assert_eq!(wallet.balance().total(), 3.0);
    }
}
