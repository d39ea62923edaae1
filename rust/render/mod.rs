//! Turning a snapshot into terminal text: number formatting, the frame layout, and the native
//! renderer thread that draws it without ever touching Python.

pub mod format;
pub mod frame;
pub mod native;
