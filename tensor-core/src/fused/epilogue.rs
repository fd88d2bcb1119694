//! [`EpilogueMatMul`]: a 2-D matmul with its bias-add and activation applied per output
//! block.

use super::{FusedElementwise, Instr, Operand};
use crate::dispatch::dispatch1;
use crate::{BinaryOp, Data, Op, Result, Tensor, UnaryOp};

/// A 2-D matmul followed by an optional bias-add (bias of the output's last dimension) and
/// an optional unary activation, applied to each output block right after it is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct EpilogueMatMul {
    /// Transpose the first operand.
    pub transpose_a: bool,
    /// Transpose the second operand.
    pub transpose_b: bool,
    /// A third input, the bias, is added to every row.
    pub bias: bool,
    /// Applied after the bias.
    pub activation: Option<UnaryOp>,
}

impl EpilogueMatMul {
    /// A short description: `matmul+bias_add+relu`.
    pub fn describe(&self) -> String {
        let mut s = String::from("matmul");
        if self.bias {
            s.push_str("+bias_add");
        }
        if let Some(a) = self.activation {
            s.push('+');
            s.push_str(a.name());
        }
        s
    }
}

impl EpilogueMatMul {
    /// Runs the product on `inputs`: `a`, `b` and, when [`EpilogueMatMul::bias`], the bias.
    /// Equal to matmul, add and the activation run apart.
    pub fn run(&self, inputs: &[&Data]) -> Result<Data> {
        let want = 2 + usize::from(self.bias);
        let (Some(a), Some(b)) = (inputs.first(), inputs.get(1)) else {
            return Err(crate::Error::invalid(
                "matmul",
                format!("a fused matmul takes {want} inputs, got {}", inputs.len()),
            ));
        };
        let bias = if self.bias {
            Some(*inputs.get(2).ok_or_else(|| {
                crate::Error::invalid(
                    "matmul",
                    format!("a fused matmul with a bias takes 3 inputs, got {}", inputs.len()),
                )
            })?)
        } else {
            None
        };
        let options = crate::MatMul {
            transpose_a: self.transpose_a,
            transpose_b: self.transpose_b,
        };
        crate::ops::linalg::matmul_epilogue(options, a, b, bias, self.activation)
    }

    /// The same product on tensors, wherever they live: the matmul, then the bias-add and
    /// activation as one [`FusedElementwise`] program (one kernel on a GPU, separate ops
    /// elsewhere). How a graph runs it on an accelerator.
    pub fn run_tensors(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let want = 2 + usize::from(self.bias);
        if inputs.len() != want {
            return Err(crate::Error::invalid(
                "matmul",
                format!("a fused matmul takes {want} inputs, got {}", inputs.len()),
            ));
        }
        let op = Op::MatMul {
            transpose_a: self.transpose_a,
            transpose_b: self.transpose_b,
        };
        let y = dispatch1(op, &inputs[..2])?;
        let mut program = Vec::with_capacity(2);
        let mut args = vec![&y];
        if self.bias {
            program.push(Instr::Binary(BinaryOp::Add, Operand::Input(0), Operand::Input(1)));
            args.push(inputs[2]);
        }
        if let Some(u) = self.activation {
            let x = if self.bias { Operand::Temp(0) } else { Operand::Input(0) };
            program.push(Instr::Unary(u, x));
        }
        if program.is_empty() {
            return Ok(y);
        }
        let epilogue = FusedElementwise {
            dtype: y.dtype(),
            dims: y.dims().to_vec(),
            program,
        };
        epilogue.run_tensors(&args)
    }
}
