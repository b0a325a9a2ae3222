//! What `pipe run` shows while it works: on a terminal, a bar for the whole run and a
//! spinner per running stage; otherwise one plain line per stage that ran or failed.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    running: HashMap<usize, ProgressBar>,
    /// Plain lines go to stderr when stdout carries JSON.
    to_stderr: bool,
}

impl Progress {
    pub fn new(total: usize, json: bool) -> Progress {
        if !json && std::io::stdout().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} stages {elapsed_precise} {msg}")
                    .expect("a valid template"),
            );
            Progress { multi: Some(multi), overall: Some(overall), running: HashMap::new(), to_stderr: false }
        } else {
            Progress { multi: None, overall: None, running: HashMap::new(), to_stderr: json }
        }
    }

    pub fn started(&mut self, i: usize, name: &str, threads: usize) {
        if let Some(multi) = &self.multi {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("a valid template"));
            bar.set_message(format!("{name} ({threads} thread{})", if threads == 1 { "" } else { "s" }));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.running.insert(i, bar);
        }
    }

    /// A callback for a running stage's own progress line (epoch, loss): shown beside
    /// its spinner on a terminal, dropped otherwise.
    pub fn reporter(&self, i: usize) -> Box<dyn Fn(String) + Send + Sync> {
        match self.running.get(&i) {
            Some(bar) => {
                let bar = bar.clone();
                let base = bar.message();
                Box::new(move |msg: String| bar.set_message(format!("{base} {msg}")))
            }
            None => Box::new(|_| {}),
        }
    }

    /// Prints a line about a running stage (`submitted NAME as slurm job 42`) the way
    /// the other lines are printed, from any thread.
    pub fn announcer(&self) -> Box<dyn Fn(String) + Send + Sync> {
        let multi = self.multi.clone();
        let to_stderr = self.to_stderr;
        Box::new(move |text: String| match &multi {
            Some(m) => {
                let _ = m.println(&text);
            }
            None if to_stderr => eprintln!("{text}"),
            None => println!("{text}"),
        })
    }

    /// A stage is done: `verb` is `ran`, `cached`, `failed` or `skipped`; or it stopped
    /// and waits again (`waiting`). `place`: the cluster job it ran as.
    pub fn finished(&mut self, i: usize, name: &str, verb: &str, seconds: Option<f64>, place: Option<&str>) {
        if let Some(bar) = self.running.remove(&i) {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&bar);
            }
        }
        // A stage waiting again (for an input being repaired) is not done yet.
        if let Some(o) = self.overall.as_ref().filter(|_| verb != "waiting") {
            o.inc(1);
        }
        if verb != "cached" {
            let time = match (seconds, place) {
                (Some(s), Some(at)) => format!(" ({s:.2}s, {at})"),
                (Some(s), None) => format!(" ({s:.2}s)"),
                (None, Some(at)) => format!(" ({at})"),
                (None, None) => String::new(),
            };
            self.line(&format!("{verb:>7} {name}{time}"));
        }
    }

    pub fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None if self.to_stderr => eprintln!("{text}"),
            None => println!("{text}"),
        }
    }

    pub fn done(&mut self) {
        if let Some(o) = self.overall.take() {
            o.finish_and_clear();
        }
    }
}
