//! Hugging Face image datasets stored as parquet: an image struct column (`bytes`,
//! `path`) holding encoded PNG/JPEG, and an integer label column.
//!
//! Files are found under the root (or the root is one file) and assigned to a part by
//! their split name, in the layouts the Hub uses: `data/train-00000-of-00002.parquet`
//! or `<config>/train/0000.parquet`; `validation` serves as test when there is no
//! `test`. Columns: the image column is the one the file's `huggingface` metadata
//! marks as `Image`, else `image` or `img`; the label column is `label`, `labels` or
//! `fine_label` (CIFAR-100, whose `coarse_label` then becomes the groups). Class names
//! come from the metadata's `ClassLabel` names, else are the label numbers.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

use super::decode::{ImageOrigin, assemble, decode_all, decode_bytes};
use super::files::find_parquet;
use super::{DataError, Dataset};

const LABEL_COLUMNS: [&str; 3] = ["label", "labels", "fine_label"];
const IMAGE_COLUMNS: [&str; 2] = ["image", "img"];

pub fn read_parquet(root: &Path, channels: Option<usize>) -> Result<Dataset, DataError> {
    if let Some(c) = channels
        && c != 1
        && c != 3
    {
        return Err(DataError::Channels { channels: c });
    }
    let files = find_parquet(root);
    let of = |split: &[&str]| -> Vec<&PathBuf> {
        files.iter().filter(|f| split.iter().any(|s| in_split(root, f, s))).collect()
    };
    let mut train_files = of(&["train"]);
    if train_files.is_empty() && root.is_file() {
        train_files = files.iter().collect();
    }
    let mut test_files = of(&["test"]);
    if test_files.is_empty() {
        test_files = of(&["validation", "valid", "val"]);
    }
    if train_files.is_empty() {
        return Err(DataError::Missing {
            path: root.to_path_buf(),
            what: "no train*.parquet (or train/*.parquet) found",
        });
    }
    let train = read_tables(&train_files)?;
    let test = (!test_files.is_empty()).then(|| read_tables(&test_files)).transpose()?;

    let tables = || train.iter().chain(test.iter().flatten());
    let meta = tables().find(|t| t.names.is_some()).or_else(|| tables().next());
    let max_label = tables().flat_map(|t| t.rows.iter().map(|r| r.label)).max();
    let classes = match meta.and_then(|t| t.names.clone()) {
        Some(names) => names,
        None => (0..=max_label.unwrap_or(0).max(0)).map(|i| i.to_string()).collect(),
    };
    for t in tables() {
        for (row, r) in t.rows.iter().enumerate() {
            if r.label < 0 || r.label as usize >= classes.len() {
                return Err(DataError::FileLabel {
                    path: t.path.clone(),
                    index: row,
                    label: r.label,
                    classes: classes.len(),
                });
            }
        }
    }
    let groups = coarse_groups(tables(), &classes, meta.and_then(|t| t.coarse_names.clone()))?;

    let part = |tables: &[Table]| {
        let origins: Vec<ImageOrigin> = tables
            .iter()
            .flat_map(|t| (0..t.rows.len()).map(|row| ImageOrigin { path: t.path.clone(), row: Some(row) }))
            .collect();
        let rows: Vec<&Row> = tables.iter().flat_map(|t| &t.rows).collect();
        let labels: Vec<u16> = rows.iter().map(|r| r.label as u16).collect();
        let items: Vec<(&ImageOrigin, &Row)> = origins.iter().zip(rows).collect();
        let decoded = decode_all(&items, |(o, r)| decode_bytes(&r.image, || (*o).clone()))?;
        Ok::<_, DataError>((origins, labels, decoded))
    };
    let (train_o, train_l, train_d) = part(&train)?;
    let (shape, train, test) = match &test {
        Some(test) => {
            let (test_o, test_l, test_d) = part(test)?;
            let (shape, [train, test]) =
                assemble([(&train_o, train_l, &train_d), (&test_o, test_l, &test_d)], channels)?;
            (shape, train, Some(test))
        }
        None => {
            let (shape, [train]) = assemble([(&train_o, train_l, &train_d)], channels)?;
            (shape, train, None)
        }
    };
    let ds = Dataset { shape, classes, groups, train, test };
    ds.check()?;
    Ok(ds)
}

/// Whether `file` belongs to `split`: a folder below the root named so, or a file
/// name that is the split or starts with it followed by `-`, `_` or `.`.
fn in_split(root: &Path, file: &Path, split: &str) -> bool {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let dirs = rel.parent().into_iter().flat_map(|p| p.components());
    if dirs.into_iter().any(|c| c.as_os_str() == split) {
        return true;
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    stem == split
        || [b'-', b'_', b'.']
            .iter()
            .any(|&sep| stem.len() > split.len() && stem.starts_with(split) && stem.as_bytes()[split.len()] == sep)
}

struct Row {
    image: Vec<u8>,
    label: i64,
    coarse: Option<i64>,
}

struct Table {
    path: PathBuf,
    rows: Vec<Row>,
    names: Option<Vec<String>>,
    coarse_names: Option<Vec<String>>,
}

fn read_tables(files: &[&PathBuf]) -> Result<Vec<Table>, DataError> {
    files.iter().map(|f| read_table(f)).collect()
}

fn read_table(path: &Path) -> Result<Table, DataError> {
    let pq = |source| DataError::Parquet { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    let reader = SerializedFileReader::new(file).map_err(pq)?;
    let features = hf_features(&reader);
    let schema = reader.metadata().file_metadata().schema();
    let columns: Vec<String> = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
    let typed = |kind: &str| {
        columns.iter().find(|c| features.as_ref().and_then(|f| f.get(c.as_str())?.get("_type")?.as_str()) == Some(kind))
    };
    let pick = |prefer: &[&str]| columns.iter().find(|c| prefer.contains(&c.as_str()));
    let missing = |column: &str| DataError::Column {
        path: path.to_path_buf(),
        column: column.to_string(),
        problem: format!("not found (columns: {})", columns.join(", ")),
    };
    let image_col = typed("Image").or_else(|| pick(&IMAGE_COLUMNS)).ok_or_else(|| missing("image"))?.clone();
    let label_col = pick(&LABEL_COLUMNS).or_else(|| typed("ClassLabel")).ok_or_else(|| missing("label"))?.clone();
    let coarse_col = (label_col == "fine_label").then(|| pick(&["coarse_label"])).flatten().cloned();
    let names_of = |col: &str| -> Option<Vec<String>> {
        let names = features.as_ref()?.get(col)?.get("names")?.as_array()?;
        names.iter().map(|n| n.as_str().map(String::from)).collect()
    };

    let mut rows = Vec::new();
    for (index, row) in reader.get_row_iter(None).map_err(pq)?.enumerate() {
        let bad = |column: &str, problem: &str| DataError::Column {
            path: path.to_path_buf(),
            column: column.to_string(),
            problem: format!("row {index}: {problem}"),
        };
        let (mut image, mut label, mut coarse) = (None, None, None);
        for (name, field) in row.map_err(pq)?.into_columns() {
            if name == image_col {
                image = Some(image_bytes(field).ok_or_else(|| bad(&name, "no image bytes"))?);
            } else if name == label_col {
                label = Some(integer(&field).ok_or_else(|| bad(&name, "not an integer"))?);
            } else if Some(&name) == coarse_col.as_ref() {
                coarse = Some(integer(&field).ok_or_else(|| bad(&name, "not an integer"))?);
            }
        }
        rows.push(Row {
            image: image.ok_or_else(|| bad(&image_col, "missing"))?,
            label: label.ok_or_else(|| bad(&label_col, "missing"))?,
            coarse,
        });
    }
    Ok(Table {
        path: path.to_path_buf(),
        rows,
        names: names_of(&label_col),
        coarse_names: coarse_col.as_deref().and_then(names_of),
    })
}

/// The `features` object of the `huggingface` key-value metadata, if any.
fn hf_features(reader: &SerializedFileReader<File>) -> Option<serde_json::Map<String, Value>> {
    let kv = reader.metadata().file_metadata().key_value_metadata()?;
    let text = kv.iter().find(|kv| kv.key == "huggingface")?.value.as_ref()?;
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("info")?.get("features")?.as_object().cloned()
}

fn image_bytes(field: Field) -> Option<Vec<u8>> {
    match field {
        Field::Group(g) => g.into_columns().into_iter().find_map(|(n, f)| match f {
            Field::Bytes(b) if n == "bytes" => Some(b.data().to_vec()),
            _ => None,
        }),
        Field::Bytes(b) => Some(b.data().to_vec()),
        _ => None,
    }
}

fn integer(field: &Field) -> Option<i64> {
    Some(match *field {
        Field::Byte(v) => v as i64,
        Field::Short(v) => v as i64,
        Field::Int(v) => v as i64,
        Field::Long(v) => v,
        Field::UByte(v) => v as i64,
        Field::UShort(v) => v as i64,
        Field::UInt(v) => v as i64,
        Field::ULong(v) => i64::try_from(v).ok()?,
        _ => return None,
    })
}

/// Per fine class its coarse name, when the tables carry a coarse column.
fn coarse_groups<'a>(
    tables: impl Iterator<Item = &'a Table>,
    classes: &[String],
    names: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, DataError> {
    let mut groups: Vec<Option<String>> = vec![None; classes.len()];
    let mut any = false;
    for t in tables {
        for r in &t.rows {
            let Some(c) = r.coarse else { continue };
            any = true;
            let name = match &names {
                Some(n) => n.get(c as usize).cloned().unwrap_or_else(|| c.to_string()),
                None => c.to_string(),
            };
            let slot = &mut groups[r.label as usize];
            match slot {
                None => *slot = Some(name),
                Some(first) if *first != name => {
                    return Err(DataError::CoarseConflict {
                        path: t.path.clone(),
                        fine: classes[r.label as usize].clone(),
                        first: first.clone(),
                        second: name,
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(any.then(|| groups.into_iter().map(Option::unwrap_or_default).collect()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    fn png(v: u8, w: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_pixel(w, 3, image::Luma([v])).write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A file in the Hub's layout: image struct, int64 label, ClassLabel metadata.
    fn write(path: &Path, images: &[Vec<u8>], labels: &[i64], names: Option<&[&str]>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let schema = parse_message_type(
            "message schema {
                optional group image { optional binary bytes; optional binary path (STRING); }
                optional int64 label;
            }",
        )
        .unwrap();
        let meta = names.map(|n| {
            let features = serde_json::json!({"info": {"features": {
                "image": {"_type": "Image"},
                "label": {"_type": "ClassLabel", "names": n},
            }}});
            vec![KeyValue::new("huggingface".into(), features.to_string())]
        });
        let props =
            WriterProperties::builder().set_compression(Compression::SNAPPY).set_key_value_metadata(meta).build();
        let file = File::create(path).unwrap();
        let mut w = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let n = images.len();
        let bytes: Vec<ByteArray> = images.iter().map(|b| ByteArray::from(b.clone())).collect();
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>().write_batch(&bytes, Some(&vec![2; n]), None).unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>().write_batch(&[], Some(&vec![1; n]), None).unwrap();
        col.close().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<Int64Type>().write_batch(labels, Some(&vec![1; n]), None).unwrap();
        col.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();
    }

    #[test]
    fn hub_layout_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        let imgs = |vs: &[u8]| vs.iter().map(|&v| png(v, 4)).collect::<Vec<_>>();
        write(&d.join("train-00000-of-00002.parquet"), &imgs(&[10, 20]), &[0, 1], Some(&["cat", "dog"]));
        write(&d.join("train-00001-of-00002.parquet"), &imgs(&[30]), &[1], Some(&["cat", "dog"]));
        write(&d.join("test-00000-of-00001.parquet"), &imgs(&[40, 50]), &[1, 0], Some(&["cat", "dog"]));
        assert!(!find_parquet(dir.path()).is_empty());
        let ds = read_parquet(dir.path(), None).unwrap();
        assert_eq!((ds.shape, &ds.classes[..]), ([1, 3, 4], &["cat".to_string(), "dog".into()][..]));
        assert_eq!(ds.train.labels, [0, 1, 1]);
        assert_eq!(ds.train.image(2, ds.shape), [30; 12]);
        assert_eq!(ds.test.as_ref().unwrap().labels, [1, 0]);
        let rgb = read_parquet(dir.path(), Some(3)).unwrap();
        assert_eq!(rgb.shape, [3, 3, 4]);
    }

    #[test]
    fn config_split_layout_without_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("plain/train");
        write(&d.join("0000.parquet"), &[png(1, 2), png(2, 2), png(3, 2)], &[2, 0, 1], None);
        let ds = read_parquet(dir.path(), None).unwrap();
        assert_eq!(ds.classes, ["0", "1", "2"]);
        assert!(ds.test.is_none());
        let single = read_parquet(&d.join("0000.parquet"), None).unwrap();
        assert_eq!(single.train, ds.train);
    }

    #[test]
    fn bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("train.parquet");
        write(&f, &[png(1, 2), png(2, 2)], &[0, -1], Some(&["a", "b"]));
        let e = read_parquet(dir.path(), None).unwrap_err().to_string();
        assert_eq!(e, format!("{}: record 1 has label -1, but there are only 2 classes", f.display()));

        write(&f, &[png(1, 2), b"garbage".to_vec()], &[0, 1], Some(&["a", "b"]));
        let e = read_parquet(dir.path(), None).unwrap_err().to_string();
        assert_eq!(e, format!("{} row 1: cannot decode image", f.display()));

        write(&f, &[png(1, 2), png(1, 3)], &[0, 1], Some(&["a", "b"]));
        let e = read_parquet(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("row 1: image is 3x3, but"), "{e}");

        std::fs::write(&f, b"PAR1 not really").unwrap();
        assert!(matches!(read_parquet(dir.path(), None), Err(DataError::Parquet { .. })));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(read_parquet(empty.path(), None), Err(DataError::Missing { .. })));
    }
}
