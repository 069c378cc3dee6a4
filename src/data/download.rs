//! Fetching MNIST and Fashion-MNIST for users (feature `download`, off by default). Tests and CI
//! never call it: they read `../shared/data/mnist` or files they build.
//!
//! Each file is fetched from the first mirror that answers, streamed into `<file>.part` while
//! its md5 (and, for MNIST, sha256) is computed, and renamed into place only when the sums are
//! the published ones. Files already present and correct are not fetched again.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The datasets [`download`] knows: MNIST and Fashion-MNIST (same file names and format).
///
/// ```
/// use ferrograd::data::MnistKind;
/// assert_eq!(MnistKind::Mnist.dir_name(), "mnist");
/// assert_eq!(MnistKind::FashionMnist.dir_name(), "fashion-mnist");
/// assert!(MnistKind::Mnist.mirrors()[0].starts_with("https://"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistKind {
    /// Handwritten digits, 0 to 9.
    Mnist,
    /// Zalando's clothing images in ten classes, MNIST's drop-in replacement.
    FashionMnist,
}

/// A file and its published sums.
struct Remote {
    name: &'static str,
    md5: &'static str,
    sha256: Option<&'static str>,
}

const MNIST: [Remote; 4] = [
    Remote {
        name: "train-images-idx3-ubyte.gz",
        md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        sha256: Some("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    },
    Remote {
        name: "train-labels-idx1-ubyte.gz",
        md5: "d53e105ee54ea40749a09fcbcd1e9432",
        sha256: Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    },
    Remote {
        name: "t10k-images-idx3-ubyte.gz",
        md5: "9fb629c4189551a2d022fa330f9573f3",
        sha256: Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    },
    Remote {
        name: "t10k-labels-idx1-ubyte.gz",
        md5: "ec29112dd5afa0611ce80d1b7f02629c",
        sha256: Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
];

/// Fashion-MNIST publishes md5 sums only (the ones torchvision checks).
const FASHION: [Remote; 4] = [
    Remote {
        name: "train-images-idx3-ubyte.gz",
        md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        sha256: None,
    },
    Remote {
        name: "train-labels-idx1-ubyte.gz",
        md5: "25c81989df183df01b3e8a0aad5dffbe",
        sha256: None,
    },
    Remote {
        name: "t10k-images-idx3-ubyte.gz",
        md5: "bef4ecab320f06d8554ea6380940ec79",
        sha256: None,
    },
    Remote {
        name: "t10k-labels-idx1-ubyte.gz",
        md5: "bb300cfdad3c16e7a12a480ee83cd310",
        sha256: None,
    },
];

/// No file of either dataset is near this; a mirror sending more is sending something else.
const MAX_BYTES: u64 = 64 << 20;

impl MnistKind {
    /// The standard mirrors, tried in order. (yann.lecun.com, the original site, refuses
    /// downloads.)
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            MnistKind::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ],
            MnistKind::FashionMnist => &[
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ],
        }
    }

    /// The directory name under the cache directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            MnistKind::Mnist => "mnist",
            MnistKind::FashionMnist => "fashion-mnist",
        }
    }

    fn files(self) -> &'static [Remote; 4] {
        match self {
            MnistKind::Mnist => &MNIST,
            MnistKind::FashionMnist => &FASHION,
        }
    }
}

/// Where datasets are kept: `$FERROGRAD_DATA` if set, else `ferrograd` in the platform cache
/// directory (`~/.cache/ferrograd` on Linux, `~/Library/Caches/ferrograd` on macOS,
/// `%LOCALAPPDATA%\ferrograd` on Windows).
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FERROGRAD_DATA").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("ferrograd"))
        .ok_or_else(|| {
            Error::invalid(
                "download",
                "no cache directory on this platform: set FERROGRAD_DATA to a directory",
            )
        })
}

/// Makes sure `which`'s four files are in `dir` (default: `cache_dir()/mnist` or
/// `/fashion-mnist`), fetching the missing ones from the standard mirrors, and returns the
/// directory, ready for [`super::Mnist::load`].
///
/// ```no_run
/// use ferrograd::data::{download, Mnist, MnistKind};
/// // Not run: it fetches about 12 MB over the network (once; files already there are kept).
/// let dir = download(MnistKind::Mnist, None)?;
/// let mnist = Mnist::load(&dir)?;
/// assert_eq!(mnist.train.len(), 60_000);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub fn download(which: MnistKind, dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => cache_dir()?.join(which.dir_name()),
    };
    download_from(which, &dir, which.mirrors())
}

/// [`download`] from the given mirrors (base URLs ending in `/`): a private copy, or a local
/// server in tests.
pub fn download_from(which: MnistKind, dir: &Path, mirrors: &[&str]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, format!("cannot create it: {e}")))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    for remote in which.files() {
        let path = dir.join(remote.name);
        if path.exists() && verify(&path, remote).is_ok() {
            continue;
        }
        let mut tried = Vec::new();
        let fetched = mirrors.iter().any(|mirror| {
            let url = format!("{mirror}{}", remote.name);
            match fetch(&agent, &url, &path, remote) {
                Ok(()) => true,
                Err(e) => {
                    tried.push(format!("{url}: {e}"));
                    false
                }
            }
        });
        if !fetched {
            let names: Vec<&str> = which.files().iter().map(|r| r.name).collect();
            return Err(fail(
                dir,
                format!(
                    "could not download {} ({}). Without network access, put the four files {} \
                     (from {}) into {}",
                    remote.name,
                    tried.join("; "),
                    names.join(", "),
                    which.mirrors()[0],
                    dir.display()
                ),
            ));
        }
    }
    Ok(dir.to_path_buf())
}

fn fail(dir: &Path, msg: String) -> Error {
    Error::File {
        op: "download",
        path: dir.display().to_string(),
        msg,
    }
}

/// Streams `url` into `<path>.part`, checks the sums, then renames it to `path`.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    path: &Path,
    remote: &Remote,
) -> std::result::Result<(), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let total = response.body().content_length();
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    // The template is a constant; should it ever not parse, keep indicatif's default style.
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(remote.name.to_string());
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = (|| -> std::result::Result<(), String> {
        let mut reader = response.body_mut().with_config().limit(MAX_BYTES).reader();
        let mut out = BufWriter::new(File::create(&part).map_err(|e| e.to_string())?);
        hash_and_check(&mut reader, remote, |chunk| {
            bar.inc(chunk.len() as u64);
            out.write_all(chunk)
        })?;
        out.flush().map_err(|e| e.to_string())?;
        drop(out);
        std::fs::rename(&part, path).map_err(|e| e.to_string())
    })();
    bar.finish_and_clear();
    if result.is_err() {
        std::fs::remove_file(&part).ok();
    }
    result
}

/// Checks a file already on disk against the published sums.
fn verify(path: &Path, remote: &Remote) -> std::result::Result<(), String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    hash_and_check(&mut f, remote, |_| Ok(()))
}

/// Reads `input` to the end, handing each chunk to `sink`, and checks the md5 and sha256 of
/// what was read against `remote`'s.
fn hash_and_check(
    input: &mut impl Read,
    remote: &Remote,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::result::Result<(), String> {
    let (mut md5, mut sha) = (Md5::new(), Sha256::new());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        sink(&buf[..n]).map_err(|e| e.to_string())?;
    }
    check(remote, &hex(&md5.finalize()), &hex(&sha.finalize()))
}

fn check(remote: &Remote, md5: &str, sha256: &str) -> std::result::Result<(), String> {
    if md5 != remote.md5 {
        return Err(format!("md5 {md5}, expected {}", remote.md5));
    }
    match remote.sha256 {
        Some(want) if want != sha256 => Err(format!("sha256 {sha256}, expected {want}")),
        _ => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
