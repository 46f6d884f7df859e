use super::*;
use crate::model::testing::llama_2_7b;
use crate::plan::device::{Generation, Link, LinkKind};
use crate::plan::engine::Engine;
use crate::plan::throughput::efficiency::gemm;
use crate::plan::training::Offload;
use crate::units::{BytesPerSec, FlopsPerSec};

const P7B: u64 = 6_738_415_616;

fn h200() -> DeviceSpeed {
    DeviceSpeed {
        bandwidth: BytesPerSec(4.8e12),
        peak_16bit: Some(FlopsPerSec(989.4e12)),
        peak_16bit_fp16_acc: None,
        peak_8bit: None,
        peak_fp32: None,
        link: Some(Link { kind: LinkKind::Nvlink, bandwidth_per_direction: BytesPerSec(450e9) }),
        host_link: Some(BytesPerSec(63e9)),
    }
}

fn full_7b<'a>(spec: &'a ModelSpec, device: &'a DeviceSpeed, e: &'a Efficiency) -> TrainSpeedRequest<'a> {
    TrainSpeedRequest {
        spec,
        params: Params { total: P7B, active: P7B },
        trained: Trained::Full,
        quantized: None,
        checkpointing: Checkpointing::None,
        optimizer: Optimizer::Adamw,
        trainable: P7B,
        state_bytes: 2.0,
        gradient_bytes: 2.0,
        weight_bytes: 2.0 * P7B as f64,
        seq: 1024,
        micro_batch: 1,
        grad_accum: 1,
        parallel: Parallel::single(),
        nodes: 1,
        inter_node_bytes_per_s: DEFAULT_INTER_NODE_GB_S * 1e9,
        overlap: true,
        device,
        efficiency: e,
        frozen_forwards: 0,
        offloaded_activation_bytes: 0.0,
    }
}

fn run(req: &TrainSpeedRequest) -> TrainingSpeed {
    let t = TrainingEfficiency::defaults(gemm(Generation::Hopper));
    train_speed(req, &t, &mut BasisLog::default()).unwrap()
}

/// Full fine-tune FLOPs per token = 6·6.74e9 + attention 3·32·s/2·16,384 (the module doc).
#[test]
fn llama2_7b_full_flops_per_token() {
    let (spec, d, e) = (llama_2_7b(), h200(), Efficiency::defaults(Engine::Hf, Generation::Hopper));
    let req = full_7b(&spec, &d, &e);
    let (linear, attention) = micro_batch_flops(&req);
    assert_eq!(linear, 6.0 * P7B as f64 * 1024.0);
    assert_eq!(attention, 3.0 * 32.0 * 1024.0 * 1024.0 / 2.0 * 16384.0);
    let per_token = (linear + attention) / 1024.0;
    assert!((per_token - (6.0 * 6.738e9 + 8.05e8)).abs() / per_token < 1e-3, "{per_token}");
}

/// DPO: a pair is two sequences, and the reference's forward adds 2·N per token and one
/// attention forward; its time is that work at the GEMM rate plus a third of the non-GEMM traffic.
#[test]
fn dpo_adds_the_reference_forward() {
    let (spec, d, e) = (llama_2_7b(), h200(), Efficiency::defaults(Engine::Hf, Generation::Hopper));
    let pairs = TrainSpeedRequest { micro_batch: 2, ..full_7b(&spec, &d, &e) };
    let sft = run(&pairs);
    let dpo = run(&TrainSpeedRequest { frozen_forwards: 1, ..pairs.clone() });
    let (linear, attention) = micro_batch_flops(&pairs);
    let (fwd_linear, fwd_attention) = forward_flops(&pairs);
    assert_eq!(fwd_linear, linear / 3.0);
    assert_eq!(fwd_attention, attention / 3.0);
    assert_eq!(dpo.flops_per_step, sft.flops_per_step + fwd_linear + fwd_attention);
    assert_eq!(dpo.tokens_per_step, sft.tokens_per_step);
    let extra = dpo.step_time_s - sft.step_time_s;
    // GEMMs 2·N·2048 + attention at 771 TFLOPS ≈ 36.4 ms, non-GEMM 80.8 / 3 ms ≈ 26.9 ms.
    assert!((extra - 0.0633).abs() < 0.002, "{extra}");
}

/// The module doc's step: 54.7 + 40.4 + 66.6 ms = 161.7 ms.
#[test]
fn llama2_7b_full_step_on_h200() {
    let (spec, d, e) = (llama_2_7b(), h200(), Efficiency::defaults(Engine::Hf, Generation::Hopper));
    let s = run(&full_7b(&spec, &d, &e));
    assert!((s.step_time_s - 0.1617).abs() < 0.001, "{}", s.step_time_s);
    assert_eq!(s.tokens_per_step, 1024);
    assert_eq!(s.communication_s, 0.0);
}

/// LoRA's frozen base does no weight gradients: 4·N + 6·A per token; full checkpointing adds a
/// forward (2·N more).
#[test]
fn lora_and_checkpointing_flops() {
    let (spec, d, e) = (llama_2_7b(), h200(), Efficiency::defaults(Engine::Hf, Generation::Hopper));
    let mut req = full_7b(&spec, &d, &e);
    req.trained = Trained::Lora { params: 4_194_304, matrices: 64 };
    let (lora, _) = micro_batch_flops(&req);
    assert_eq!(lora, (4.0 * P7B as f64 + 6.0 * 4_194_304.0) * 1024.0);
    req.checkpointing = Checkpointing::Full;
    let (ckpt, _) = micro_batch_flops(&req);
    assert_eq!(ckpt - lora, 2.0 * P7B as f64 * 1024.0);
}

/// 8 GPUs data parallel: a ring all-reduce of 2 B × 6.74e9 gradients over NVLink moves
/// 2·7/8·13.48 GB = 23.6 GB at 450 GB/s = 52.4 ms (and 6.6 µs + 14 hops of 0.6 µs of latency),
/// hidden behind the backward when overlapped;
/// across 2 nodes the 50 GB/s NIC sets the pace.
#[test]
fn data_parallel_all_reduce() {
    let (spec, d, e) = (llama_2_7b(), h200(), Efficiency::defaults(Engine::Hf, Generation::Hopper));
    let mut req = full_7b(&spec, &d, &e);
    req.parallel = Parallel { gpus: 8, tp: 1, pp: 1, zero: 0, offload: Offload::None };
    let s = run(&req);
    let ring = 2.0 * 7.0 / 8.0 * 2.0 * P7B as f64 / 450e9 + 6.6e-6 + 14.0 * 0.6e-6;
    assert!((s.communication_s - ring).abs() < 1e-9, "{}", s.communication_s);
    assert_eq!(s.exposed_communication_s, 0.0);
    assert_eq!(s.tokens_per_step, 8 * 1024);
    req.overlap = false;
    assert!((run(&req).exposed_communication_s - ring).abs() < 1e-9);
    req.parallel.gpus = 16;
    req.nodes = 2;
    let two = run(&req);
    assert!(two.communication_s > 8.0 * ring, "{}", two.communication_s);
    req.parallel.zero = 3;
    req.nodes = 1;
    req.parallel.gpus = 8;
    let z3 = run(&req).communication_s;
    assert!((z3 / ring - 1.5).abs() < 0.01, "ZeRO-3 moves 1.5× the all-reduce: {z3} vs {ring}");
}
