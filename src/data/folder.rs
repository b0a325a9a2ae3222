//! Image folders: `root/train/<class>/*.png|jpg` plus `root/test/<class>/...` when
//! `root/train` exists, else `root/<class>/...` with no test part.
//!
//! Classes are the sorted folder names and images are taken in sorted path order, so
//! the result does not depend on the file system's listing order; sizes and channels
//! are settled as in `decode`.

use std::fs;
use std::path::{Path, PathBuf};

use super::decode::{Decoded, ImageOrigin, assemble, decode_all, decode_bytes};
use super::{DataError, Dataset};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

pub fn read_folder(root: &Path, channels: Option<usize>) -> Result<Dataset, DataError> {
    if let Some(c) = channels
        && c != 1
        && c != 3
    {
        return Err(DataError::Channels { channels: c });
    }
    let train_dir = root.join("train");
    let (train_dir, test_dir) = if train_dir.is_dir() {
        let test = root.join("test");
        (train_dir, test.is_dir().then_some(test))
    } else {
        (root.to_path_buf(), None)
    };
    let classes = subdirs(&train_dir)?;
    if classes.is_empty() {
        return Err(DataError::NoClasses { path: train_dir });
    }
    let train_files = list(&train_dir, &classes)?;
    let test_files = match &test_dir {
        Some(dir) => {
            for class in subdirs(dir)? {
                if !classes.contains(&class) {
                    return Err(DataError::UnknownTestClass { path: dir.join(&class), class });
                }
            }
            Some(list(dir, &classes)?)
        }
        None => None,
    };

    let origins = |files: &[(PathBuf, u16)]| -> Vec<ImageOrigin> {
        files.iter().map(|(path, _)| ImageOrigin { path: path.clone(), row: None }).collect()
    };
    let labels = |files: &[(PathBuf, u16)]| files.iter().map(|f| f.1).collect::<Vec<_>>();
    let train_origins = origins(&train_files);
    let train = decode_all(&train_origins, decode_file)?;
    let (shape, train, test) = match &test_files {
        Some(test_files) => {
            let test_origins = origins(test_files);
            let test = decode_all(&test_origins, decode_file)?;
            let (shape, [train, test]) = assemble(
                [(&train_origins, labels(&train_files), &train), (&test_origins, labels(test_files), &test)],
                channels,
            )?;
            (shape, train, Some(test))
        }
        None => {
            let (shape, [train]) = assemble([(&train_origins, labels(&train_files), &train)], channels)?;
            (shape, train, None)
        }
    };
    let ds = Dataset { shape, classes, groups: None, train, test };
    ds.check()?;
    Ok(ds)
}

/// Sorted names of the visible subfolders of `dir`.
fn subdirs(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in read_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, DataError> {
    let err = |source| DataError::Read { path: dir.to_path_buf(), source };
    fs::read_dir(dir).map_err(err)?.collect::<Result<Vec<_>, _>>().map_err(err)
}

/// (path, label) of every image under `dir/<class>`, by class then sorted path.
fn list(dir: &Path, classes: &[String]) -> Result<Vec<(PathBuf, u16)>, DataError> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let mut paths: Vec<PathBuf> = if class_dir.is_dir() {
            read_dir(&class_dir)?.into_iter().map(|e| e.path()).filter(|p| is_image(p)).collect()
        } else {
            Vec::new()
        };
        if paths.is_empty() {
            return Err(DataError::EmptyClassDir { path: class_dir });
        }
        paths.sort();
        files.extend(paths.into_iter().map(|p| (p, label as u16)));
    }
    Ok(files)
}

fn is_image(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    !hidden && ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) && path.is_file()
}

fn decode_file(origin: &ImageOrigin) -> Result<Decoded, DataError> {
    let bytes = fs::read(&origin.path).map_err(|source| DataError::Read { path: origin.path.clone(), source })?;
    decode_bytes(&bytes, || origin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save_rgb(path: &Path, w: u32, h: u32, seed: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([seed, (x * 10) as u8, (y * 10) as u8]));
        img.save(path).unwrap();
    }

    fn save_gray(path: &Path, w: u32, h: u32, v: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
    }

    #[test]
    fn train_test_layout_png_lossless() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        save_rgb(&r.join("train/dog/b.png"), 4, 3, 2);
        save_rgb(&r.join("train/dog/a.png"), 4, 3, 1);
        save_rgb(&r.join("train/cat/x.png"), 4, 3, 3);
        save_rgb(&r.join("test/cat/y.png"), 4, 3, 4);
        save_rgb(&r.join("test/dog/z.PNG"), 4, 3, 5);
        fs::write(r.join("train/dog/notes.txt"), "ignored").unwrap();
        let ds = read_folder(r, None).unwrap();
        assert_eq!(ds.shape, [3, 3, 4]);
        assert_eq!(ds.classes, ["cat", "dog"]);
        assert_eq!(ds.train.labels, [0, 1, 1]);
        // Sorted paths: dog/a (seed 1) before dog/b (seed 2); red plane first (CHW).
        assert_eq!(ds.train.image(1, ds.shape)[..4], [1; 4]);
        assert_eq!(ds.train.image(1, ds.shape)[12..16], [0, 10, 20, 30]);
        assert_eq!(ds.test.as_ref().unwrap().labels, [0, 1]);
    }

    #[test]
    fn flat_layout_jpeg_and_channel_majority() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        save_gray(&r.join("a/1.png"), 5, 5, 100);
        save_gray(&r.join("a/2.jpg"), 5, 5, 200);
        save_rgb(&r.join("b/1.jpg"), 5, 5, 9);
        let ds = read_folder(r, None).unwrap();
        assert!(ds.test.is_none());
        assert_eq!(ds.shape, [1, 5, 5]);
        assert_eq!(ds.train.image(0, ds.shape), [100; 25]);
        let jpeg = ds.train.image(1, ds.shape);
        assert!(jpeg.iter().all(|&v| v.abs_diff(200) <= 2), "{jpeg:?}");
        let rgb = read_folder(r, Some(3)).unwrap();
        assert_eq!(rgb.shape, [3, 5, 5]);
        assert_eq!(rgb.train.image(0, rgb.shape), [100; 75]);
    }

    #[test]
    fn bad_folders_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        save_rgb(&r.join("a/1.png"), 4, 4, 0);
        save_rgb(&r.join("b/1.png"), 4, 5, 0);
        let e = read_folder(r, None).unwrap_err().to_string();
        let (bad, first) = (r.join("b/1.png"), r.join("a/1.png"));
        assert_eq!(
            e,
            format!("{}: image is 4x5, but {} is 4x4; all images must have one size", bad.display(), first.display())
        );

        save_rgb(&r.join("b/1.png"), 4, 4, 0);
        fs::write(r.join("b/2.jpg"), b"not a jpeg").unwrap();
        let e = read_folder(r, None).unwrap_err();
        assert!(matches!(&e, DataError::Decode { origin, .. } if origin.path.ends_with("b/2.jpg")), "{e}");

        fs::remove_file(r.join("b/2.jpg")).unwrap();
        fs::create_dir(r.join("c")).unwrap();
        let e = read_folder(r, None).unwrap_err().to_string();
        assert_eq!(e, format!("{}: class has no images", r.join("c").display()));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(read_folder(empty.path(), None), Err(DataError::NoClasses { .. })));
        assert!(matches!(read_folder(r, Some(4)), Err(DataError::Channels { channels: 4 })));
    }

    #[test]
    fn unknown_test_class_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        save_gray(&r.join("train/a/1.png"), 2, 2, 0);
        save_gray(&r.join("test/a/1.png"), 2, 2, 0);
        save_gray(&r.join("test/z/1.png"), 2, 2, 0);
        let e = read_folder(r, None).unwrap_err().to_string();
        assert!(e.ends_with("class z is not among the training classes"), "{e}");
    }

    /// Loads the real CIFAR-10 image folder when `PIPE_CIFAR10` names it, and times the
    /// first decode against reading the stored form back.
    #[test]
    fn cifar10_image_folder() {
        let Some(root) = std::env::var_os("PIPE_CIFAR10") else {
            println!("skipping: PIPE_CIFAR10 not set");
            return;
        };
        let t = std::time::Instant::now();
        let ds = read_folder(Path::new(&root), None).unwrap();
        let decode = t.elapsed();
        assert_eq!(ds.shape, [3, 32, 32]);
        assert_eq!(ds.classes.len(), 10);
        assert!(ds.train.counts(10).iter().all(|&c| c == 5000));
        assert!(ds.test.as_ref().unwrap().counts(10).iter().all(|&c| c == 1000));
        let dir = tempfile::tempdir().unwrap();
        let t = std::time::Instant::now();
        ds.write(dir.path()).unwrap();
        let write = t.elapsed();
        let t = std::time::Instant::now();
        let back = Dataset::read(dir.path()).unwrap();
        let read = t.elapsed();
        assert!(back == ds);
        println!(
            "cifar10 folder: decode {decode:.2?}, write {write:.2?}, read {read:.2?} ({} threads)",
            rayon::current_num_threads()
        );
    }
}
