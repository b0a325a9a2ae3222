//! `pipe dag FILE [--dot | --mermaid]`.

use clap::Args;

use crate::commands::{PipelineArgs, load_pipeline};
use crate::dag_view;
use crate::error::{Error, emit};

#[derive(Args, Debug)]
pub struct DagArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Graphviz dot.
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Mermaid flowchart.
    #[arg(long)]
    pub mermaid: bool,
}

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
