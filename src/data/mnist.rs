//! MNIST and Fashion-MNIST from the four IDX files in a directory (gzipped or raw; the two
//! datasets share the file names and format).

use std::path::{Path, PathBuf};

use super::idx::{self, file_error};
use crate::error::{Error, Result};

/// The four files, by split: (images, labels).
const FILES: [(&str, &str); 2] = [
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
];

/// Labelled grayscale images, kept as the bytes the files hold: image `i` is
/// `images[i * height * width..][..height * width]`, row-major, 0 (background) to 255.
///
/// ```
/// use ferrograd::data::{DataLoader, ImageSet};
/// use ferrograd::Device;
/// // IDX files: magic number (unsigned bytes, rank), each dimension as a big-endian u32, data.
/// let images: [u8; 20] = [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 255, 0];
/// let labels: [u8; 9] = [0, 0, 8, 1, 0, 0, 0, 1, 7];
/// let set = ImageSet::from_idx_bytes(&images, &labels)?; // one 2 × 2 image of a 7
/// assert_eq!((set.len(), set.height, set.width, set.classes), (1, 2, 2, 10));
/// let batch = DataLoader::new(&set, 1, &Device::cpu())?.epoch(0).next().unwrap()?;
/// assert_eq!(batch.inputs.to_vec()?, vec![0.0, 1.0, 1.0, 0.0]); // scaled to [0, 1]
/// assert_eq!(batch.targets.to_vec_as::<i32>()?, vec![7]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct ImageSet {
    /// Every image's pixels, one byte each, image after image.
    pub images: Vec<u8>,
    /// One class index per image, below `classes`.
    pub labels: Vec<u8>,
    /// Rows of each image.
    pub height: usize,
    /// Columns of each image.
    pub width: usize,
    /// How many classes the labels index (10 for MNIST).
    pub classes: usize,
}

/// Sizes, not the bytes (MNIST's training set is 47 MB).
impl std::fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSet")
            .field("len", &self.labels.len())
            .field("height", &self.height)
            .field("width", &self.width)
            .field("classes", &self.classes)
            .finish()
    }
}

impl ImageSet {
    /// How many images (and labels) it holds.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when it holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Checks that the fields agree: `images` holds `height * width` bytes per label, both
    /// sizes are at least 1, and every label is below `classes`. The fields are public, so a
    /// set built by hand is checked here (the loaders and `DataLoader::new` call it) rather than
    /// failing mid-epoch.
    pub fn validate(&self) -> Result<()> {
        let op = "ImageSet";
        self.check_sizes()?;
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= self.classes)
        {
            return Err(Error::invalid(
                op,
                format!(
                    "label {l} of image {i} is not below classes {}",
                    self.classes
                ),
            ));
        }
        Ok(())
    }

    /// The sizes alone (O(1)): the image bytes hold one `height × width` image per label.
    pub(crate) fn check_sizes(&self) -> Result<()> {
        let (h, w, n) = (self.height, self.width, self.labels.len());
        let want = h.checked_mul(w).and_then(|px| px.checked_mul(n));
        if h == 0 || w == 0 || want != Some(self.images.len()) {
            return Err(Error::invalid(
                "ImageSet",
                format!(
                    "{} image bytes do not hold {n} images of {h} x {w} (one per label)",
                    self.images.len()
                ),
            ));
        }
        Ok(())
    }

    /// The first `n` images (all of them if there are fewer): `--limit` for quick runs.
    pub fn take(&self, n: usize) -> ImageSet {
        // Never past the images either, should the fields disagree (`validate` reports that).
        let n = n
            .min(self.len())
            .min(self.images.len() / self.pixels().max(1));
        ImageSet {
            images: self.images[..n * self.pixels()].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..*self
        }
    }
}

/// The training (60,000) and test (10,000) splits.
///
/// ```no_run
/// use ferrograd::data::Mnist;
/// // Not run: it reads the four MNIST files, which must be in `data/mnist`.
/// let mnist = Mnist::load("data/mnist")?;
/// assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
/// assert_eq!((mnist.train.height, mnist.train.width, mnist.train.classes), (28, 28, 10));
/// let quick = mnist.train.take(1000); // the first 1,000 images, for a quick run
/// assert_eq!(quick.len(), 1000);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// The 60,000 training images.
    pub train: ImageSet,
    /// The 10,000 test images.
    pub test: ImageSet,
}

/// Fashion-MNIST has MNIST's files, format and ten classes; only the pictures differ.
///
/// ```no_run
/// use ferrograd::data::FashionMnist;
/// // Not run: it reads the four Fashion-MNIST files, which must be in `data/fashion-mnist`.
/// let fashion = FashionMnist::load("data/fashion-mnist")?;
/// assert_eq!(fashion.train.classes, 10); // T-shirt/top, trouser, .., ankle boot
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub type FashionMnist = Mnist;

impl Mnist {
    /// Reads `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]` from `dir`.
    ///
    /// # Errors
    /// [`crate::Error::File`] naming the file and the problem: a missing file (with the four
    /// names expected), a wrong magic number, a truncated file or one longer than its header
    /// says, header dimensions over 1 GiB, image and label counts that differ, a label of 10
    /// or more.
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist> {
        let dir = dir.as_ref();
        let [train, test] = FILES.map(|(images, labels)| split(dir, images, labels));
        Ok(Mnist {
            train: train?,
            test: test?,
        })
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    for p in [&gz, &raw] {
        if p.is_file() {
            return Ok(p.clone());
        }
    }
    let all: Vec<String> = FILES
        .iter()
        .flat_map(|(i, l)| [format!("{i}.gz"), format!("{l}.gz")])
        .collect();
    Err(file_error(
        &gz,
        format!(
            "not found (nor {name}). Put the four MNIST files there ({}), gzipped or not",
            all.join(", ")
        ),
    ))
}

fn split(dir: &Path, images: &str, labels: &str) -> Result<ImageSet> {
    let (ipath, lpath) = (find(dir, images)?, find(dir, labels)?);
    let img = idx::read(&ipath, 3)?;
    let lab = idx::read(&lpath, 1)?;
    image_set(img, lab, &ipath, &lpath)
}

impl ImageSet {
    /// An image set from the bytes of an images file (`[n, h, w]` bytes) and a labels file
    /// (`[n]`, each below 10) in IDX format, gzipped or raw, checked as [`Mnist::load`] checks
    /// files: for data embedded in a program or fetched by other means.
    ///
    /// # Errors
    /// [`crate::Error::File`] naming `<images>` or `<labels>` and the problem.
    pub fn from_idx_bytes(images: &[u8], labels: &[u8]) -> Result<ImageSet> {
        let (iname, lname) = ("<images>", "<labels>");
        let img = idx::from_bytes(images, 3, iname)?;
        let lab = idx::from_bytes(labels, 1, lname)?;
        image_set(img, lab, Path::new(iname), Path::new(lname))
    }
}

fn image_set(img: idx::Idx, lab: idx::Idx, ipath: &Path, lpath: &Path) -> Result<ImageSet> {
    let (n, height, width) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.dims[0] != n {
        return Err(file_error(
            lpath,
            format!(
                "holds {} labels but {} holds {n} images; the two files must come from the same \
                 split",
                lab.dims[0],
                ipath.display()
            ),
        ));
    }
    let classes = 10;
    if let Some((i, &l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
    {
        return Err(file_error(
            lpath,
            format!("label {i} is {l}, outside 0..{classes}: the file is corrupt"),
        ));
    }
    let set = ImageSet {
        images: img.data,
        labels: lab.data,
        height,
        width,
        classes,
    };
    // What the header checks leave: images of zero height or width.
    set.validate().map_err(|e| {
        let msg = e.to_string();
        file_error(ipath, msg.trim_start_matches("ImageSet: "))
    })?;
    Ok(set)
}
