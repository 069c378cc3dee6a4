//! The IDX format of MNIST and Fashion-MNIST, gzipped or raw: a big-endian header (two zero
//! bytes, a type code, the number of dimensions, then each dimension as a u32) and the data.
//! Everything is checked before it is trusted, and nothing is allocated from a header's word:
//! the data is read through a limit one byte past what the header promises, so a truncated
//! file, trailing bytes or a header claiming terabytes are errors, not huge allocations.

use std::io::{BufRead, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// The largest array a header may declare (1 GiB; MNIST's training images are 47 MB).
const MAX_BYTES: usize = 1 << 30;
/// The only element type MNIST uses: unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// One IDX array of unsigned bytes.
#[derive(Debug)]
pub(crate) struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

pub(crate) fn file_error(path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        op: "mnist",
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Reads `path`, gunzipping it when it starts with the gzip magic bytes, and checks it holds
/// a u8 array of `rank` dimensions.
pub(crate) fn read(path: &Path, rank: usize) -> Result<Idx> {
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e.to_string()))?;
    decode(std::io::BufReader::new(file), rank).map_err(|msg| {
        file_error(
            path,
            format!("{msg}. The file is corrupt or truncated: delete it and download it again"),
        )
    })
}

/// The same from the bytes of a file (`name` stands for its path in errors).
pub(crate) fn from_bytes(bytes: &[u8], rank: usize, name: &str) -> Result<Idx> {
    decode(bytes, rank).map_err(|msg| file_error(Path::new(name), msg))
}

/// Gunzips when the data starts with the gzip magic bytes, then parses.
fn decode(mut r: impl BufRead, rank: usize) -> std::result::Result<Idx, String> {
    let buf = r.fill_buf().map_err(|e| e.to_string())?;
    let gz = buf.len() >= 2 && buf[..2] == [0x1f, 0x8b];
    // Every member of a multi-member gzip file (valid, and what some tools write), not only
    // the first.
    let mut reader: Box<dyn Read + '_> = if gz {
        Box::new(MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    parse(&mut reader, rank)
}

/// The header and data from `r`; errors are plain messages, placed by the caller.
fn parse(r: &mut dyn Read, rank: usize) -> std::result::Result<Idx, String> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic, "the 4-byte magic number")?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != TYPE_U8 || usize::from(magic[3]) != rank {
        return Err(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x}: expected 000008{rank:02x} (unsigned \
             bytes, {rank} dimensions)",
            magic[0], magic[1], magic[2], magic[3]
        ));
    }
    let mut dims = Vec::with_capacity(rank);
    for d in 0..rank {
        let mut b = [0u8; 4];
        read_exact(r, &mut b, &format!("dimension {d} of the header"))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_BYTES)
        .ok_or_else(|| {
            format!("the header's dimensions {dims:?} exceed the 1 GiB limit for one array")
        })?;
    let mut data = Vec::new();
    r.take(len as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading the data failed: {e}"))?;
    if data.len() < len {
        return Err(format!(
            "truncated: the header {dims:?} promises {len} bytes of data, the file has {}",
            data.len()
        ));
    }
    if data.len() > len {
        return Err(format!(
            "more data than the header {dims:?} declares ({len} bytes)"
        ));
    }
    Ok(Idx { dims, data })
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> std::result::Result<(), String> {
    r.read_exact(buf)
        .map_err(|e| format!("truncated: could not read {what} ({e})"))
}
