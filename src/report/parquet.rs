//! The long table as Parquet, written with the low-level column writer (no Arrow):
//! one row group, uncompressed, strings as UTF8, `n` nullable.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;

use super::atomic;
use super::build::Report;
use super::error::ReportError;
use super::row::Row;

/// Column names and order match the CSV header.
const SCHEMA: &str = "message transfer_report {
    required binary split (UTF8);
    required binary treatment (UTF8);
    optional int64 n;
    required double mean_top1;
    required double std_top1;
    required double min_top1;
    required double max_top1;
    required int64 runs;
}";

impl Report {
    pub fn write_parquet(&self, path: &Path) -> Result<(), ReportError> {
        atomic::write_with(path, "tmp", |tmp| {
            let io = |source| ReportError::Io { path: path.to_owned(), source };
            let file = File::create(tmp).map_err(io)?;
            write_rows(file, &self.rows).map_err(|source| ReportError::Parquet { path: path.to_owned(), source })
        })
    }
}

fn write_rows(file: File, rows: &[Row]) -> Result<(), ParquetError> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props)?;
    if !rows.is_empty() {
        let mut group = writer.next_row_group()?;
        let text = |f: fn(&Row) -> &str| rows.iter().map(|r| ByteArray::from(f(r))).collect::<Vec<_>>();
        let real = |f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<_>>();
        strings(&mut group, &text(|r| &r.split))?;
        strings(&mut group, &text(|r| &r.treatment))?;
        let ns: Vec<i64> = rows.iter().filter_map(|r| r.n).map(|n| n as i64).collect();
        let defined: Vec<i16> = rows.iter().map(|r| i16::from(r.n.is_some())).collect();
        longs(&mut group, &ns, Some(&defined))?;
        doubles(&mut group, &real(|r| r.mean_top1))?;
        doubles(&mut group, &real(|r| r.std_top1))?;
        doubles(&mut group, &real(|r| r.min_top1))?;
        doubles(&mut group, &real(|r| r.max_top1))?;
        longs(&mut group, &rows.iter().map(|r| r.runs as i64).collect::<Vec<_>>(), None)?;
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

type Group<'a> = SerializedRowGroupWriter<'a, File>;

fn next<'g>(group: &'g mut Group<'_>) -> Result<parquet::file::writer::SerializedColumnWriter<'g>, ParquetError> {
    group.next_column()?.ok_or_else(|| ParquetError::General("more values than schema columns".to_owned()))
}

fn strings(group: &mut Group<'_>, values: &[ByteArray]) -> Result<(), ParquetError> {
    let mut column = next(group)?;
    column.typed::<ByteArrayType>().write_batch(values, None, None)?;
    column.close()
}

fn longs(group: &mut Group<'_>, values: &[i64], defined: Option<&[i16]>) -> Result<(), ParquetError> {
    let mut column = next(group)?;
    column.typed::<Int64Type>().write_batch(values, defined, None)?;
    column.close()
}

fn doubles(group: &mut Group<'_>, values: &[f64]) -> Result<(), ParquetError> {
    let mut column = next(group)?;
    column.typed::<DoubleType>().write_batch(values, None, None)?;
    column.close()
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    use crate::report::build::build;
    use crate::report::test_records::{run, seeded};

    #[test]
    fn round_trip() {
        let records = [
            run("random", "baseB", None, 0.625),
            seeded("random", "AnB", Some(3), 0, 0.5),
            seeded("random", "AnB", Some(3), 1, 0.75),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.parquet");
        build(&records).write_parquet(&path).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].get_string(1).unwrap(), "baseB");
        assert!(rows[0].get_long(2).is_err(), "n of base is null");
        assert_eq!((rows[1].get_long(2).unwrap(), rows[1].get_double(3).unwrap()), (3, 0.625));
        assert_eq!(rows[1].get_long(7).unwrap(), 2);
    }
}
