//! One transferable layer as written in a pipeline file ("conv 32 3 pool", "fc 128
//! dropout") and its parser. The text form is the serialised form too, so a config
//! file and a checkpoint's config.json read the same.

use serde::{Deserialize, Serialize};

/// The dropout rate that a bare `dropout` stands for (AlexNet's fc6/fc7).
const DEFAULT_DROPOUT: f32 = 0.5;
/// The max-pool that a bare `pool` stands for: 2x2 windows, stride 2.
const DEFAULT_POOL: (usize, usize) = (2, 2);

/// One transferable layer, 1-based in the file: a convolution (+ReLU, optional
/// max-pool, optional LRN) or a fully connected layer (+ReLU, optional dropout).
///
/// The order inside a conv layer follows CaffeNet: conv, ReLU, pool, LRN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LayerSpec {
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        /// Max-pool window size and stride.
        pool: Option<(usize, usize)>,
        /// Local response normalisation across 5 channels (AlexNet's constants).
        lrn: bool,
    },
    Fc {
        out: usize,
        /// Probability of zeroing a unit during training; 0 = no dropout.
        dropout: f32,
    },
}

impl LayerSpec {
    /// Parses `conv OUT KERNEL [stride=S] [pad=P] [pool | pool=SIZE/STRIDE] [lrn]` or
    /// `fc OUT [dropout | dropout=P]`. `pad` defaults to `kernel/2` ("same" for odd
    /// kernels at stride 1).
    pub fn parse(text: &str) -> Result<LayerSpec, String> {
        let mut tokens = text.split_whitespace();
        let kind =
            tokens.next().ok_or_else(|| "empty layer: expected `conv OUT KERNEL ...` or `fc OUT ...`".to_string())?;
        match kind {
            "conv" => parse_conv(tokens),
            "fc" => parse_fc(tokens),
            other => Err(format!("unknown layer kind `{other}`: expected `conv` or `fc`")),
        }
    }

    /// The canonical text form: defaults are left out, so `parse(to_text(x)) == x` and
    /// equal layers print equally.
    pub fn to_text(&self) -> String {
        match *self {
            LayerSpec::Conv { out, kernel, stride, pad, pool, lrn } => {
                let mut s = format!("conv {out} {kernel}");
                if stride != 1 {
                    s += &format!(" stride={stride}");
                }
                if pad != kernel / 2 {
                    s += &format!(" pad={pad}");
                }
                match pool {
                    None => {}
                    Some(p) if p == DEFAULT_POOL => s += " pool",
                    Some((size, stride)) => s += &format!(" pool={size}/{stride}"),
                }
                if lrn {
                    s += " lrn";
                }
                s
            }
            LayerSpec::Fc { out, dropout } => {
                let mut s = format!("fc {out}");
                if dropout == DEFAULT_DROPOUT {
                    s += " dropout";
                } else if dropout != 0.0 {
                    s += &format!(" dropout={dropout}");
                }
                s
            }
        }
    }

    /// Output channels (conv) or units (fc).
    pub fn out(&self) -> usize {
        match *self {
            LayerSpec::Conv { out, .. } | LayerSpec::Fc { out, .. } => out,
        }
    }
}

/// The most output channels or units a layer may have.
pub const MAX_WIDTH: usize = 1 << 20;
/// The largest kernel, stride, padding or pooling window.
pub const MAX_WINDOW: usize = 1024;

fn parse_count<'a>(
    tokens: &mut impl Iterator<Item = &'a str>,
    kind: &str,
    what: &str,
    max: usize,
) -> Result<usize, String> {
    let token = tokens.next().ok_or_else(|| format!("`{kind}` needs {what}: expected a positive integer"))?;
    positive(token, what, max)
}

fn positive(token: &str, what: &str, max: usize) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(n) if n > max => Err(format!("{what} {n} is too large: at most {max}")),
        Ok(n) if n > 0 => Ok(n),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
            Err(format!("{what} {token} is too large: at most {max}"))
        }
        _ => Err(format!("bad {what} `{token}`: expected a positive integer")),
    }
}

fn parse_conv<'a>(mut tokens: impl Iterator<Item = &'a str>) -> Result<LayerSpec, String> {
    let out = parse_count(&mut tokens, "conv", "output channels", MAX_WIDTH)?;
    let kernel = parse_count(&mut tokens, "conv", "kernel size", MAX_WINDOW)?;
    let (mut stride, mut pad, mut pool, mut lrn) = (1, kernel / 2, None, false);
    for token in tokens {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        match (key, value) {
            ("stride", Some(v)) => stride = positive(v, "stride", MAX_WINDOW)?,
            ("pad", Some(v)) => {
                pad = v
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p <= MAX_WINDOW)
                    .ok_or_else(|| format!("bad pad `{v}`: expected an integer from 0 to {MAX_WINDOW}"))?
            }
            ("pool", None) => pool = Some(DEFAULT_POOL),
            ("pool", Some(v)) => {
                let bad = || format!("bad pool `{v}`: expected SIZE/STRIDE, e.g. `pool=3/2`");
                let (size, step) = v.split_once('/').ok_or_else(bad)?;
                let size = size.parse::<usize>().ok().filter(|&n| n > 0 && n <= MAX_WINDOW).ok_or_else(bad)?;
                let step = step.parse::<usize>().ok().filter(|&n| n > 0 && n <= MAX_WINDOW).ok_or_else(bad)?;
                pool = Some((size, step));
            }
            ("lrn", None) => lrn = true,
            _ => {
                return Err(format!(
                    "unexpected `{token}` in conv layer: expected `stride=S`, `pad=P`, `pool`, `pool=SIZE/STRIDE` or `lrn`"
                ));
            }
        }
    }
    Ok(LayerSpec::Conv { out, kernel, stride, pad, pool, lrn })
}

fn parse_fc<'a>(mut tokens: impl Iterator<Item = &'a str>) -> Result<LayerSpec, String> {
    let out = parse_count(&mut tokens, "fc", "output units", MAX_WIDTH)?;
    let mut dropout = 0.0;
    for token in tokens {
        match token.split_once('=') {
            None if token == "dropout" => dropout = DEFAULT_DROPOUT,
            Some(("dropout", v)) => {
                dropout = v
                    .parse::<f32>()
                    .ok()
                    .filter(|p| (0.0..1.0).contains(p))
                    .ok_or_else(|| format!("bad dropout `{v}`: expected a probability in [0, 1)"))?
            }
            _ => {
                return Err(format!("unexpected `{token}` in fc layer: expected `dropout` or `dropout=P`"));
            }
        }
    }
    Ok(LayerSpec::Fc { out, dropout })
}

impl TryFrom<String> for LayerSpec {
    type Error = String;
    fn try_from(text: String) -> Result<LayerSpec, String> {
        LayerSpec::parse(&text)
    }
}

impl From<LayerSpec> for String {
    fn from(spec: LayerSpec) -> String {
        spec.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            LayerSpec::parse("conv 32 3").unwrap(),
            LayerSpec::Conv { out: 32, kernel: 3, stride: 1, pad: 1, pool: None, lrn: false }
        );
        assert_eq!(
            LayerSpec::parse("conv 32 3 pool").unwrap(),
            LayerSpec::Conv { out: 32, kernel: 3, stride: 1, pad: 1, pool: Some((2, 2)), lrn: false }
        );
        assert_eq!(
            LayerSpec::parse("conv 96 11 stride=4 pad=0 pool=3/2 lrn").unwrap(),
            LayerSpec::Conv { out: 96, kernel: 11, stride: 4, pad: 0, pool: Some((3, 2)), lrn: true }
        );
        assert_eq!(LayerSpec::parse("fc 128").unwrap(), LayerSpec::Fc { out: 128, dropout: 0.0 });
        assert_eq!(LayerSpec::parse("  fc 128   dropout ").unwrap(), LayerSpec::Fc { out: 128, dropout: 0.5 });
        assert_eq!(LayerSpec::parse("fc 128 dropout=0.3").unwrap(), LayerSpec::Fc { out: 128, dropout: 0.3 });
    }

    #[test]
    fn text_round_trips() {
        for text in [
            "conv 32 3",
            "conv 32 3 pool",
            "conv 96 11 stride=4 pad=0 pool=3/2 lrn",
            "conv 8 4 pad=1",
            "conv 8 5 stride=2 lrn",
            "fc 128",
            "fc 128 dropout",
            "fc 128 dropout=0.3",
        ] {
            let spec = LayerSpec::parse(text).unwrap();
            assert_eq!(spec.to_text(), text);
            assert_eq!(LayerSpec::parse(&spec.to_text()).unwrap(), spec);
        }
        let json = serde_json::to_string(&LayerSpec::parse("conv 8 3 pool").unwrap()).unwrap();
        assert_eq!(json, "\"conv 8 3 pool\"");
    }

    #[test]
    fn errors_name_the_token_and_the_expectation() {
        let cases = [
            ("", "empty layer: expected `conv OUT KERNEL ...` or `fc OUT ...`"),
            ("dense 3", "unknown layer kind `dense`: expected `conv` or `fc`"),
            ("conv", "`conv` needs output channels: expected a positive integer"),
            ("conv 0 3", "bad output channels `0`: expected a positive integer"),
            ("conv 8 x", "bad kernel size `x`: expected a positive integer"),
            ("conv 8 3 stride=0", "bad stride `0`: expected a positive integer"),
            ("conv 8 3 pad=-1", "bad pad `-1`: expected an integer from 0 to 1024"),
            ("conv 8 4611686018427387904", "kernel size 4611686018427387904 is too large: at most 1024"),
            ("fc 99999999999999999999999", "output units 99999999999999999999999 is too large: at most 1048576"),
            ("fc 1000000000", "output units 1000000000 is too large: at most 1048576"),
            ("conv 8 3 pool=3", "bad pool `3`: expected SIZE/STRIDE, e.g. `pool=3/2`"),
            (
                "conv 8 3 dropout",
                "unexpected `dropout` in conv layer: expected `stride=S`, `pad=P`, `pool`, `pool=SIZE/STRIDE` or `lrn`",
            ),
            ("fc 8 dropout=1", "bad dropout `1`: expected a probability in [0, 1)"),
            ("fc 8 pool", "unexpected `pool` in fc layer: expected `dropout` or `dropout=P`"),
        ];
        for (text, want) in cases {
            assert_eq!(LayerSpec::parse(text).unwrap_err(), want, "{text:?}");
        }
    }
}
