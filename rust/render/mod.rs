//! Turning a snapshot into terminal text: number formatting, the frame layout, the native
//! renderer thread that draws it with indicatif without ever touching Python, and the draw
//! target indicatif draws on so that terminals that re-wrap lines on a resize stay clean.

pub mod format;
pub mod frame;
pub mod lines;
pub mod native;
pub mod newline_term;
pub mod sampler;
