//! The figure's one font, embedded, so that drawing text needs no system font
//! libraries (fontconfig) and renders the same on every machine.

use std::sync::OnceLock;

use plotters::style::{FontStyle, IntoFont, TextStyle, register_font};

use super::error::ReportError;

/// DejaVu Sans (free licence, see assets/DejaVuSans-LICENSE).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registered as the generic family, so the SVG names a family every viewer has.
const FAMILY: &str = "sans-serif";

/// Registers the font with plotters once per process; every figure calls this first.
pub(crate) fn ensure_registered() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()) {
        Ok(())
    } else {
        Err(ReportError::Font { name: "DejaVu Sans" })
    }
}

/// Text of plotters size `size`. plotters' sizes are line heights: the SVG backend
/// writes `font-size` as size / 1.24 and the bitmap one draws about size / 1.16 per
/// em, so 20 is the smallest size that stays at 16 px or more in both.
pub(crate) fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}
