//! Who is asking, and what they may do.
//!
//! - Users and roles come from `[[console.users]]`; passwords are checked
//!   against their argon2 PHC hashes (on a blocking thread: a check costs
//!   tens of milliseconds by design). An unknown user is checked against a
//!   dummy hash, so the answer takes as long as for a known one.
//! - Five failed logins for a name lock it for a minute (an attempt counts
//!   until it succeeds, so parallel guesses share the limit); two password
//!   checks run at once, so a flood of logins cannot exhaust memory.
//! - A live region's refresh does not keep a session alive: only the
//!   user's own requests restart the idle clock.
//! - A session is a random 256-bit token in an `HttpOnly`, `SameSite=Strict`
//!   cookie (`Secure` with `console.secure_cookies`). The server keeps only
//!   its SHA-256, so neither a lookup's timing nor a memory dump gives a
//!   usable token. It ends after `session_idle_minutes` without a request,
//!   after `session_max_hours` in any case, and at logout.
//! - Every form that changes something carries the session's CSRF token,
//!   compared in constant time; a POST whose `Origin` is another site is
//!   refused before that.
//!
//! Sessions live in this process: run one console, or route a user to the
//! same one (they survive nothing but the process).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use conveyor_runtime::console::{ConsoleConfig, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "conveyor_session";
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);
/// Names with recent failures kept at most (beyond: logins wait).
const MAX_TRACKED: usize = 10_000;
/// Password checks at once.
const CHECKS: usize = 2;

/// A logged-in user, as a request sees them.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    started: Instant,
    seen: Instant,
}

struct Failures {
    count: u32,
    last: Instant,
}

pub struct Auth {
    users: HashMap<String, (Role, String)>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<String, Failures>>,
    idle: Duration,
    max: Duration,
    pub secure_cookies: bool,
    /// Verified against for unknown names (same cost as a real check).
    dummy: String,
    checks: tokio::sync::Semaphore,
}

/// `n` random bytes from the OS, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).expect("the OS random source failed");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An argon2id PHC hash of `password` with a fresh salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&{
        let mut s = [0u8; 16];
        getrandom::getrandom(&mut s).map_err(|e| anyhow::anyhow!("random salt: {e}"))?;
        s
    })
    .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong name or password (never says which).
    Refused,
    /// Too many failures for this name; try again later.
    Locked,
}

impl Auth {
    pub fn new(config: &ConsoleConfig) -> anyhow::Result<Auth> {
        let users = config
            .users
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    (u.role, u.password_hash.expose().to_string()),
                )
            })
            .collect();
        Ok(Auth {
            users,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            idle: Duration::from_secs(config.session_idle_minutes * 60),
            max: Duration::from_secs(config.session_max_hours * 3600),
            secure_cookies: config.secure_cookies,
            dummy: hash_password(&random_hex(16))?,
            checks: tokio::sync::Semaphore::new(CHECKS),
        })
    }

    /// Adds a user (the `--dev-users` of a local run).
    pub fn add_user(&mut self, name: &str, role: Role, password: &str) -> anyhow::Result<()> {
        self.users
            .insert(name.to_string(), (role, hash_password(password)?));
        Ok(())
    }

    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks the password; on success opens a session and returns its
    /// token (for the cookie).
    pub async fn login(&self, user: &str, password: &str) -> Result<String, LoginError> {
        // The attempt counts as a failure until it succeeds, so parallel
        // guesses cannot all slip under the limit.
        let failures = {
            let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if f.len() >= MAX_TRACKED {
                f.retain(|_, x| x.last.elapsed() < LOCKOUT);
            }
            if f.len() >= MAX_TRACKED {
                return Err(LoginError::Locked);
            }
            let x = f.entry(user.to_string()).or_insert(Failures {
                count: 0,
                last: Instant::now(),
            });
            if x.last.elapsed() >= LOCKOUT {
                x.count = 0;
            }
            if x.count >= MAX_FAILURES {
                return Err(LoginError::Locked);
            }
            x.count += 1;
            x.last = Instant::now();
            x.count
        };
        let known = self.users.get(user).cloned();
        let hash = known
            .as_ref()
            .map_or(self.dummy.clone(), |(_, h)| h.clone());
        let password = password.to_string();
        // Each check takes ~19 MiB and tens of milliseconds: a few at once.
        let ok = match self.checks.acquire().await {
            Ok(_permit) => tokio::task::spawn_blocking(move || verify(&hash, &password))
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        let Some((role, _)) = known.filter(|_| ok) else {
            tracing::warn!(
                user = %user.chars().take(64).collect::<String>(),
                failures,
                "console: login refused"
            );
            return Err(LoginError::Refused);
        };
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
        let token = random_hex(32);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| !self.expired(s, now));
        sessions.insert(
            digest(&token),
            Session {
                user: user.to_string(),
                role,
                csrf: random_hex(32),
                started: now,
                seen: now,
            },
        );
        tracing::info!(user, role = role.as_str(), "console: logged in");
        Ok(token)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) > self.idle || now.duration_since(s.started) > self.max
    }

    /// The session of `token`, if it is live. `touch`: a request of the
    /// user's (it restarts the idle clock); a live region's refresh is not.
    pub fn session(&self, token: &str, touch: bool) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let k = digest(token);
        let s = sessions.get_mut(&k)?;
        if self.expired(s, now) {
            sessions.remove(&k);
            return None;
        }
        if touch {
            s.seen = now;
        }
        Some(s.clone())
    }

    pub fn logout(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&digest(token));
    }

    /// The `Set-Cookie` value for a new session.
    pub fn cookie(&self, token: &str) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.max.as_secs(),
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that clears it.
    pub fn clear_cookie(&self) -> String {
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

/// The session token in a `Cookie` header, if any.
pub fn token_of(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_runtime::config::Secret;
    use conveyor_runtime::console::ConsoleUser;

    fn auth(idle_minutes: u64) -> Auth {
        let config = ConsoleConfig {
            session_idle_minutes: idle_minutes,
            users: vec![ConsoleUser {
                name: "ana".into(),
                role: Role::Operator,
                password_hash: Secret::new(hash_password("correct horse").unwrap()),
            }],
            ..ConsoleConfig::default()
        };
        Auth::new(&config).unwrap()
    }

    #[tokio::test]
    async fn a_password_opens_a_session_and_logout_ends_it() {
        let a = auth(30);
        assert_eq!(a.login("ana", "wrong").await, Err(LoginError::Refused));
        assert_eq!(
            a.login("nobody", "correct horse").await,
            Err(LoginError::Refused)
        );
        let token = a.login("ana", "correct horse").await.unwrap();
        let s = a.session(&token, true).unwrap();
        assert_eq!((s.user.as_str(), s.role), ("ana", Role::Operator));
        assert_eq!(s.csrf.len(), 64);
        assert!(a.session("not-a-token", true).is_none());
        a.logout(&token);
        assert!(a.session(&token, true).is_none());
    }

    #[tokio::test]
    async fn repeated_failures_lock_the_name() {
        let a = auth(30);
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("ana", "guess").await, Err(LoginError::Refused));
        }
        assert_eq!(
            a.login("ana", "correct horse").await,
            Err(LoginError::Locked)
        );
    }

    #[tokio::test]
    async fn sessions_expire() {
        let mut a = auth(30);
        let token = a.login("ana", "correct horse").await.unwrap();
        a.idle = Duration::from_millis(50);
        // Live refreshes do not keep it alive; the user's requests do.
        std::thread::sleep(Duration::from_millis(30));
        assert!(a.session(&token, false).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(a.session(&token, false).is_none());
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(token_of("a=1; conveyor_session=abc; b=2"), Some("abc"));
        assert_eq!(token_of("conveyor_session="), None);
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
        let a = auth(30);
        let c = a.cookie("t");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }
}
