//! `pipe dag FILE [--dot | --mermaid]`.

use crate::cli::DagArgs;
use crate::commands::load_pipeline;
use crate::dag_view;
use crate::error::{Error, emit};

pub fn dag(a: &DagArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let text = if a.dot {
        dag_view::dot(&p)
    } else if a.mermaid {
        dag_view::mermaid(&p)
    } else {
        dag_view::text(&p)
    };
    emit(&text)
}
