//! Errors of the report's writers. Building a report cannot fail; writing one can.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write parquet table {}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// plotters' errors are generic over the backend; boxing keeps one variant for both.
    #[error("cannot draw figure {}", path.display())]
    Figure {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the embedded font {name} cannot be loaded")]
    Font { name: &'static str },
}
