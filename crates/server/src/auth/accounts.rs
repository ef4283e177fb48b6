//! API keys as accounts: a name (what logs, counters and fault rules see, never the key), an
//! optional rate limit, an optional credit balance and the model slugs the key may call.
//!
//! Keys come from `--api-keys` / `--api-keys-file` (plain: no limit, no credits, every slug) and
//! from `--keys-file` (TOML or JSON):
//!
//! ```toml
//! [[keys]]
//! key = "sk-free-1"
//! name = "free-tier"
//! plan = "free"          # 5 rpm; "pro" is 50 rpm; or rpm = 120 (and burst = 10)
//! credits = 10.0         # optional: without it the key is never short of credits
//! free_credits = 2.0     # spent before `credits`
//! models = ["bria-increase-resolution"]   # optional: slugs the key may call (default: all)
//! ```

use std::sync::Arc;

use serde::Deserialize;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::credits::{Balance, Hold, Wallet, UNLIMITED_CREDITS};
use super::limiter::{Limiter, Rate};
use crate::config_file::parse_config;
use crate::error::Invalid;

/// A key's account. The key itself is only used to find it.
#[derive(Debug)]
pub struct Account {
    pub name: String,
    key: String,
    pub limiter: Option<Limiter>,
    pub wallet: Option<Arc<Wallet>>,
    models: Option<Vec<String>>,
}

impl Account {
    /// The caller of an open server (no key configured).
    pub fn anonymous() -> Arc<Self> {
        static ANONYMOUS: std::sync::OnceLock<Arc<Account>> = std::sync::OnceLock::new();
        ANONYMOUS
            .get_or_init(|| {
                Arc::new(Account {
                    name: "anonymous".into(),
                    key: String::new(),
                    limiter: None,
                    wallet: None,
                    models: None,
                })
            })
            .clone()
    }

    /// The balance; a key without one shows a constant, unlimited-looking balance.
    pub fn balance(&self) -> Balance {
        self.wallet.as_ref().map_or(
            Balance {
                credits: UNLIMITED_CREDITS,
                free_credits: 0.0,
            },
            |wallet| wallet.balance(),
        )
    }

    /// Reserves `amount` from the account's wallet, or returns the balance when it is short.
    /// An account without a wallet holds nothing.
    pub fn reserve(&self, amount: f64) -> Result<Option<Hold>, Balance> {
        self.wallet
            .as_ref()
            .map(|wallet| Hold::reserve(wallet, amount))
            .transpose()
    }

    pub fn may_call(&self, slug: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == slug || m == "*"))
    }

    /// Name, plan and balance, for the admin API.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "rate": self.limiter.as_ref().map(Limiter::rate),
            "balance": self.wallet.as_ref().map(|wallet| wallet.balance()),
            "models": self.models,
        })
    }
}

/// All accounts, found by key in constant time.
#[derive(Debug, Default)]
pub struct Accounts(Vec<Arc<Account>>);

impl Accounts {
    /// Plain keys (named `key-1`, `key-2`, ... in order) and the accounts of a keys file.
    pub fn load(plain: &[String], file: Option<&std::path::Path>) -> Result<Self, Invalid> {
        let mut accounts: Vec<Account> = plain
            .iter()
            .enumerate()
            .map(|(i, key)| Account {
                name: format!("key-{}", i + 1),
                key: key.clone(),
                limiter: None,
                wallet: None,
                models: None,
            })
            .collect();
        if let Some(path) = file {
            let parsed: KeysFile =
                parse_config(path).map_err(|e| Invalid(format!("keys file {}", e.0)))?;
            for entry in parsed.keys {
                accounts.push(entry.into_account()?);
            }
        }
        for (i, account) in accounts.iter().enumerate() {
            if let Some(other) = accounts[..i]
                .iter()
                .find(|a| a.name == account.name || a.key == account.key)
            {
                return Err(Invalid(if other.name == account.name {
                    format!("two keys are named '{}'", account.name)
                } else {
                    format!(
                        "keys '{}' and '{}' are the same key",
                        other.name, account.name
                    )
                }));
            }
        }
        Ok(Accounts(accounts.into_iter().map(Arc::new).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.0.iter()
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Account>> {
        self.0.iter().find(|a| a.name == name)
    }

    /// The account of a presented key. Compares against every key without stopping at a match,
    /// each comparison in constant time.
    pub fn find(&self, presented: &[u8]) -> Option<Arc<Account>> {
        let (found, index) = self.0.iter().enumerate().fold(
            (subtle::Choice::from(0), 0u64),
            |(found, index), (i, account)| {
                let equal = account.key.as_bytes().ct_eq(presented);
                (
                    found | equal,
                    u64::conditional_select(&index, &(i as u64), equal),
                )
            },
        );
        bool::from(found).then(|| self.0[index as usize].clone())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<KeyEntry>,
}

/// The hosted plans' documented limits.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Plan {
    /// 5 requests per minute.
    Free,
    /// 50 requests per minute.
    Pro,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key: String,
    name: String,
    plan: Option<Plan>,
    rpm: Option<f64>,
    burst: Option<u32>,
    credits: Option<f64>,
    free_credits: Option<f64>,
    models: Option<Vec<String>>,
}

impl KeyEntry {
    fn into_account(self) -> Result<Account, Invalid> {
        let bad = |what: &str| Invalid(format!("key '{}': {what}", self.name));
        if self.key.trim().is_empty() || self.name.trim().is_empty() {
            return Err(bad("key and name must not be empty"));
        }
        let rpm = match (self.plan, self.rpm) {
            (Some(_), Some(_)) => return Err(bad("give a plan or an rpm, not both")),
            (Some(Plan::Free), None) => Some(5.0),
            (Some(Plan::Pro), None) => Some(50.0),
            (None, rpm) => rpm,
        };
        let limiter = match (rpm, self.burst) {
            (None, Some(_)) => return Err(bad("burst needs a plan or an rpm")),
            (None, None) => None,
            (Some(rpm), _) if !(rpm.is_finite() && rpm > 0.0 && rpm <= 1e6) => {
                return Err(bad("rpm must be a number above 0"))
            }
            (Some(_), Some(0)) => return Err(bad("burst must be at least 1")),
            // By default a minute's worth may come at once, then the steady rate.
            (Some(rpm), burst) => Some(Limiter::new(Rate {
                rpm,
                burst: burst.unwrap_or((rpm.ceil() as u32).max(1)),
            })),
        };
        let wallet = match (self.credits, self.free_credits) {
            (None, None) => None,
            (credits, free) => {
                let (credits, free) = (credits.unwrap_or(0.0), free.unwrap_or(0.0));
                if !(credits.is_finite() && free.is_finite() && credits >= 0.0 && free >= 0.0) {
                    return Err(bad("credits must be numbers of at least 0"));
                }
                Some(Arc::new(Wallet::new(Balance {
                    credits,
                    free_credits: free,
                })))
            }
        };
        Ok(Account {
            name: self.name,
            key: self.key,
            limiter,
            wallet,
            models: self.models,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(toml_entry: &str) -> Result<Arc<Account>, Invalid> {
        let file: KeysFile = toml::from_str(&format!("[[keys]]\n{toml_entry}")).unwrap();
        file.keys
            .into_iter()
            .next()
            .unwrap()
            .into_account()
            .map(Arc::new)
    }

    #[test]
    fn plans_rates_and_bad_entries() {
        let free = account("key = 'k'\nname = 'f'\nplan = 'free'").unwrap();
        assert_eq!(
            free.limiter.as_ref().unwrap().rate(),
            Rate { rpm: 5.0, burst: 5 }
        );
        let pro = account("key = 'k'\nname = 'p'\nplan = 'pro'\nburst = 2").unwrap();
        assert_eq!(
            pro.limiter.as_ref().unwrap().rate(),
            Rate {
                rpm: 50.0,
                burst: 2
            }
        );
        let open = account("key = 'k'\nname = 'o'").unwrap();
        assert!(open.limiter.is_none() && open.wallet.is_none() && open.may_call("anything"));
        for bad in [
            "key = 'k'\nname = 'x'\nplan = 'free'\nrpm = 3.0",
            "key = 'k'\nname = 'x'\nburst = 3",
            "key = 'k'\nname = 'x'\nrpm = 0.0",
            "key = 'k'\nname = 'x'\ncredits = -1.0",
            "key = ''\nname = 'x'",
        ] {
            assert!(account(bad).is_err(), "{bad}");
        }
        let restricted = account("key = 'k'\nname = 'r'\nmodels = ['other-model']").unwrap();
        assert!(!restricted.may_call("bria-increase-resolution"));
    }

    #[test]
    fn keys_file_in_toml_or_json_and_lookup_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("keys.json");
        std::fs::write(
            &json,
            r#"{"keys": [{"key": "sk-a", "name": "a", "credits": 3}]}"#,
        )
        .unwrap();
        let accounts = Accounts::load(&["plain".into()], Some(&json)).unwrap();
        assert_eq!(accounts.find(b"plain").unwrap().name, "key-1");
        assert_eq!(accounts.find(b"sk-a").unwrap().name, "a");
        assert!(accounts.find(b"sk-").is_none() && accounts.find(b"").is_none());

        let toml = dir.path().join("keys.toml");
        std::fs::write(&toml, "[[keys]]\nkey = 'plain'\nname = 'dup'\n").unwrap();
        let err = Accounts::load(&["plain".into()], Some(&toml)).unwrap_err();
        assert!(err.0.contains("same key"), "{err}");
        std::fs::write(
            &toml,
            "[[keys]]\nkey = 'x'\nname = 'a'\nrpm = 1\nextra = 1\n",
        )
        .unwrap();
        assert!(
            Accounts::load(&[], Some(&toml)).is_err(),
            "unknown fields are refused"
        );
    }
}
