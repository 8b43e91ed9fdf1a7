//! [`ChunkedStore`]: values larger than a platform's per-entry limit, split over several
//! entries and committed by a checksummed manifest written last.

use sha2::{Digest, Sha256};

use super::{SecretStore, StoreError};

/// Splits values over several entries when they exceed `max_entry` bytes.
///
/// Layout: the entry `key` holds either `V` + the value, or a manifest
/// `C<generation>:<count>:<sha256 hex>`; chunks live at `key#<generation>.<i>`. A save
/// writes the new chunks, then the manifest (the commit point), then deletes the old
/// generation, so a crash leaves the old or the new value, never a mix.
#[derive(Debug)]
pub struct ChunkedStore<S> {
    inner: S,
    max_entry: usize,
}

/// Windows Credential Manager's limit per credential blob.
pub const WINDOWS_MAX_ENTRY: usize = 2560;

impl<S: SecretStore> ChunkedStore<S> {
    /// `max_entry` must leave room for the manifest (at least 96 bytes).
    pub fn new(inner: S, max_entry: usize) -> Self {
        Self {
            inner,
            max_entry: max_entry.max(96),
        }
    }

    fn manifest(&self, key: &str) -> Result<Option<Manifest>, StoreError> {
        match self.inner.load(key)? {
            Some(raw) if raw.first() == Some(&b'C') => Manifest::parse(&raw[1..]).map(Some),
            _ => Ok(None),
        }
    }

    fn delete_chunks(&self, key: &str, m: &Manifest) -> Result<(), StoreError> {
        for i in 0..m.count {
            self.inner.delete(&format!("{key}#{}.{i}", m.generation))?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Manifest {
    generation: u64,
    count: usize,
    sha256: String,
}

impl Manifest {
    fn parse(raw: &[u8]) -> Result<Self, StoreError> {
        let text =
            std::str::from_utf8(raw).map_err(|_| StoreError::Corrupt("chunk manifest".into()))?;
        let mut parts = text.split(':');
        let bad = || StoreError::Corrupt("chunk manifest".into());
        let generation = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let count = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let sha256 = parts.next().ok_or_else(bad)?.to_owned();
        Ok(Self {
            generation,
            count,
            sha256,
        })
    }
}

impl<S: SecretStore> ChunkedStore<S> {
    /// One read: the entry, then the chunks its manifest names.
    fn load_once(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(raw) = self.inner.load(key)? else {
            return Ok(None);
        };
        match raw.first() {
            Some(b'V') => Ok(Some(raw[1..].to_vec())),
            Some(b'C') => {
                let m = Manifest::parse(&raw[1..])?;
                let mut value = Vec::new();
                for i in 0..m.count {
                    let chunk = self
                        .inner
                        .load(&format!("{key}#{}.{i}", m.generation))?
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!("chunk {i} of {key} is missing"))
                        })?;
                    value.extend_from_slice(&chunk);
                }
                if hex(&Sha256::digest(&value)) != m.sha256 {
                    return Err(StoreError::Corrupt(format!(
                        "chunks of {key} do not match their checksum"
                    )));
                }
                Ok(Some(value))
            }
            _ => Err(StoreError::Corrupt(format!(
                "unknown entry format for {key}"
            ))),
        }
    }
}

/// Reads of a chunked value before it is called corrupt: another process may be writing
/// it (new chunks, then the manifest, then the old chunks go), so a missing chunk or a
/// checksum mismatch is read again from the manifest first.
const CHUNKED_READ_ATTEMPTS: u32 = 4;

impl<S: SecretStore> SecretStore for ChunkedStore<S> {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut attempt = 1;
        loop {
            match self.load_once(key) {
                Err(StoreError::Corrupt(why)) if attempt < CHUNKED_READ_ATTEMPTS => {
                    tracing::debug!(attempt, "chunked entry unreadable ({why}); reading again");
                    std::thread::sleep(std::time::Duration::from_millis(10 * u64::from(attempt)));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let old = self.manifest(key).ok().flatten();
        if value.len() < self.max_entry {
            let mut raw = Vec::with_capacity(value.len() + 1);
            raw.push(b'V');
            raw.extend_from_slice(value);
            self.inner.save(key, &raw)?;
        } else {
            let generation = old.as_ref().map_or(1, |m| m.generation + 1);
            let chunks: Vec<&[u8]> = value.chunks(self.max_entry).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                self.inner.save(&format!("{key}#{generation}.{i}"), chunk)?;
            }
            let manifest = format!(
                "C{generation}:{}:{}",
                chunks.len(),
                hex(&Sha256::digest(value))
            );
            self.inner.save(key, manifest.as_bytes())?;
        }
        if let Some(old) = old {
            // Best effort: leftovers of an old generation are unreachable, not harmful.
            let _ = self.delete_chunks(key, &old);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let old = self.manifest(key).ok().flatten();
        self.inner.delete(key)?;
        if let Some(old) = old {
            self.delete_chunks(key, &old)?;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn chunked_store_round_trips_and_cleans_up() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 100);
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        store.save("session", &big).unwrap();
        assert!(mem.dump().len() > 5, "split over several entries");
        assert!(mem.dump().iter().all(|(_, v)| v.len() <= 100));
        assert_eq!(store.load("session").unwrap(), Some(big.clone()));

        // Overwrite with a bigger value, then a small one: old chunks go.
        let bigger: Vec<u8> = big.iter().chain(big.iter()).copied().collect();
        store.save("session", &bigger).unwrap();
        assert_eq!(store.load("session").unwrap(), Some(bigger));
        store.save("session", b"small").unwrap();
        assert_eq!(store.load("session").unwrap(), Some(b"small".to_vec()));
        assert_eq!(mem.dump().len(), 1);
        store.delete("session").unwrap();
        assert!(mem.dump().is_empty());
        assert_eq!(store.load("session").unwrap(), None);
    }

    #[test]
    fn chunked_store_detects_a_missing_or_altered_chunk() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 100);
        store.save("k", &[7u8; 500]).unwrap();
        mem.save("k#1.2", &[0u8; 100]).unwrap();
        assert!(matches!(store.load("k"), Err(StoreError::Corrupt(_))));
        mem.delete("k#1.2").unwrap();
        assert!(matches!(store.load("k"), Err(StoreError::Corrupt(_))));
    }

    /// A reader that finds the manifest of one generation while a writer replaces it
    /// (and deletes that generation's chunks) reads again instead of calling it corrupt.
    #[test]
    fn a_value_read_while_another_process_writes_it_is_read_again() {
        #[derive(Debug)]
        struct Racing {
            mem: Arc<MemoryStore>,
            fired: std::sync::atomic::AtomicBool,
        }
        impl SecretStore for Racing {
            fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                if key.contains('#') && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    // The other process writes a new generation right now.
                    ChunkedStore::new(self.mem.clone(), 100).save("k", &[2u8; 700])?;
                }
                self.mem.load(key)
            }
            fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
                self.mem.save(key, value)
            }
            fn delete(&self, key: &str) -> Result<(), StoreError> {
                self.mem.delete(key)
            }
        }
        let mem = Arc::new(MemoryStore::new());
        ChunkedStore::new(mem.clone(), 100)
            .save("k", &[1u8; 500])
            .unwrap();
        let reader = ChunkedStore::new(
            Racing {
                mem,
                fired: Default::default(),
            },
            100,
        );
        assert_eq!(reader.load("k").unwrap(), Some(vec![2u8; 700]));
    }
}
