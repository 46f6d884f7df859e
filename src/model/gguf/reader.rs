//! Bounded little-endian reads for the GGUF parser: every read counts against one budget
//! (`MAX_HEADER_BYTES`), strings against `MAX_STRING_BYTES`, and nothing is allocated before the
//! bytes it holds have arrived, so a hostile length field costs an error, not memory.

use super::{MAX_HEADER_BYTES, MAX_STRING_BYTES};
use crate::model::local::LocalFileError;
use std::io::{self, Read};
use std::path::Path;

pub(super) struct Reader<'p, R> {
    inner: R,
    path: &'p Path,
    /// Bytes consumed so far: the offset in the file.
    pos: u64,
}

impl<'p, R: Read> Reader<'p, R> {
    pub(super) fn new(inner: R, path: &'p Path) -> Self {
        Reader { inner, path, pos: 0 }
    }

    pub(super) fn path(&self) -> &'p Path {
        self.path
    }

    pub(super) fn pos(&self) -> u64 {
        self.pos
    }

    /// Fails unless `n` more bytes fit in the header budget.
    fn reserve(&self, n: u64) -> Result<(), LocalFileError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= MAX_HEADER_BYTES => Ok(()),
            end => Err(LocalFileError::HeaderTooLarge {
                path: self.path.to_path_buf(),
                len: end.unwrap_or(u64::MAX),
                limit: MAX_HEADER_BYTES,
            }),
        }
    }

    pub(super) fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LocalFileError> {
        self.reserve(N as u64)?;
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|e| LocalFileError::reading(self.path, what, e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8, LocalFileError> {
        Ok(u8::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, LocalFileError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, LocalFileError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// A GGUF string (`u64` length, then UTF-8 bytes); invalid UTF-8 is replaced, not rejected.
    pub(super) fn string(&mut self, what: &str) -> Result<String, LocalFileError> {
        let len = self.string_len(what)?;
        let mut buf = Vec::new();
        (&mut self.inner).take(len).read_to_end(&mut buf).map_err(|e| LocalFileError::reading(self.path, what, e))?;
        if buf.len() as u64 != len {
            return Err(LocalFileError::truncated(self.path, what));
        }
        self.pos += len;
        Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    pub(super) fn skip_string(&mut self, what: &str) -> Result<(), LocalFileError> {
        let len = self.string_len(what)?;
        self.skip(len, what)
    }

    fn string_len(&mut self, what: &str) -> Result<u64, LocalFileError> {
        let len = self.u64(what)?;
        if len > MAX_STRING_BYTES {
            let reason = format!("a string in the {what} is {len} bytes long, over the {MAX_STRING_BYTES}-byte limit");
            return Err(LocalFileError::malformed(self.path, reason));
        }
        self.reserve(len)?;
        Ok(len)
    }

    /// Reads and discards `n` bytes.
    pub(super) fn skip(&mut self, n: u64, what: &str) -> Result<(), LocalFileError> {
        self.reserve(n)?;
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| LocalFileError::reading(self.path, what, e))?;
        if copied != n {
            return Err(LocalFileError::truncated(self.path, what));
        }
        self.pos += n;
        Ok(())
    }
}
