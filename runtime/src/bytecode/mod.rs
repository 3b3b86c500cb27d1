//! The bytecode: instruction set, program format, verifier and disassembler.
//! It lives beside the VM so that a deployment links no parser.

pub mod disasm;
pub mod op;
pub mod program;
pub mod verify;

pub use disasm::disassemble;
pub use op::*;
pub use program::*;
pub use verify::{VerifyError, MAX_STACK};
