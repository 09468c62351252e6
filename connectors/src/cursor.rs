//! A poller's durable position: a small JSON file written atomically
//! (temp file, fsync, rename) so a crash leaves either the old or the new
//! cursor, never a torn one. Pollers store it only after the broker
//! acknowledged everything before it (G1).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("cursor file {path}: {message}")]
pub struct CursorError {
    pub path: PathBuf,
    pub message: String,
}

/// `<state.dir>/connect.<channel>/cursor.json`.
pub fn path(state_dir: &Path, channel: &str) -> PathBuf {
    state_dir
        .join(format!("connect.{channel}"))
        .join("cursor.json")
}

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CursorError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| CursorError {
                path: path.to_path_buf(),
                message: format!("unreadable ({e}); fix or delete it to backfill"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CursorError {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

pub fn store<T: Serialize>(path: &Path, value: &T) -> Result<(), CursorError> {
    let err = |e: std::io::Error| CursorError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let bytes = serde_json::to_vec(value).map_err(|e| CursorError {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_a_broken_file() {
        let d = tempfile::tempdir().unwrap();
        let p = path(d.path(), "amazon");
        assert_eq!(load::<String>(&p).unwrap(), None);
        store(&p, &"2025-01-01T00:00:00Z".to_string()).unwrap();
        assert_eq!(
            load::<String>(&p).unwrap().as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        std::fs::write(&p, b"{").unwrap();
        assert!(load::<String>(&p)
            .unwrap_err()
            .to_string()
            .contains("delete it"));
    }
}
