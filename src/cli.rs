//! Command-line definitions (clap derive). Doc comments are the help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Plans the GPU memory and speed a large language model needs, and checks the plan on GPUs.
#[derive(Debug, Parser)]
#[command(name = "headroom", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once per process, so the size of `PlanArgs` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Memory per GPU for a model, format, workload and engine, and whether it fits.
    Plan(PlanArgs),
    /// Exact parameter and byte breakdown of a local config.json, model directory, .safetensors,
    /// model.safetensors.index.json or .gguf (headers only; tensor data is never read).
    Inspect(InspectArgs),
    /// The built-in models.
    Models(ListArgs),
    /// The built-in GPUs, or with --local the GPUs on this machine (NVML).
    Gpus(GpusArgs),
    /// The weight and KV-cache formats, with exact bits per weight.
    Formats(ListArgs),
    /// Every catalog GPU at 1, 2, 4 and 8 per node that fits the plan (or, with --mode, trains
    /// the model), cheapest first, with tokens/s, price per hour and cost per million tokens.
    Fit(FitArgs),
    /// The largest context, batch and (vLLM) concurrency that fit on a GPU.
    Max(MaxArgs),
    /// Runs the kernel suite on local GPU 0: correctness checks, then achieved GB/s and TFLOPS
    /// against the catalog peaks (needs an NVIDIA driver, NVRTC and cuBLAS; exit 3 without).
    Bench(BenchArgs),
    /// Runs a command and samples GPU memory while it runs (NVML, every --interval-ms): the
    /// peak of its process tree and of each GPU, a timeline chart, and with --plan the plan's
    /// error. Exit 3 without NVML (the command is not started), 1 when the command fails.
    Watch(WatchArgs),
    /// Runs the plan for real on local GPU 0 with headroom's own engine (random weights of the
    /// exact shapes and format, bf16 or 4-bit gptq/awq; Llama-style models): memory after each
    /// phase (NVML) and prefill / decode speed against `plan --engine headroom`, plus a check of
    /// the kernels' logits against a CPU reference; with --mode full, one fine-tuning step instead.
    /// Exit 3 without a GPU.
    Validate(ValidateArgs),
    /// The planner's track record: every measurement built in (published rows and our GPU runs),
    /// planned now and compared with what was measured: median and worst error by group.
    Accuracy(AccuracyArgs),
}

#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Every record, not the summary by group.
    #[arg(long)]
    pub records: bool,
    /// The spread of measured ÷ planned speed by speed, engine and kind of GPU, as the TOML of
    /// data/speed-bands.toml (the likely ranges `plan` shows).
    #[arg(long, conflicts_with = "records")]
    pub bands: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Decode steps after the prompt; the prompt is the largest multiple of 64 tokens that
    /// leaves room for them in --context.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub decode_steps: u64,
    /// Also write the record (prediction, measurement, errors, kernel checks) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Leave the kernel check (the GPU's logits against the CPU reference on a small model) out
    /// of the report; the small model still runs first, as the warm-up.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Keep only setups whose aggregate decode speed reaches this many tokens/s.
    #[arg(long)]
    pub min_decode_tokens_per_s: Option<f64>,
    /// Keep only setups costing at most this many US dollars per hour (all GPUs together).
    #[arg(long)]
    pub max_price_per_hour: Option<f64>,
    /// With --gpu ID[:COUNT]: every weight format that fits that setup instead of every GPU,
    /// ranked by bits per weight (a quality proxy, higher first), then decode speed.
    #[arg(long)]
    pub best_format: bool,
    /// Which prices rank the setups: cloud (on-demand hourly prices only), own (purchase price
    /// over 3 years plus power, only), or any (cloud where the catalog has it, else own).
    #[arg(long, value_enum, default_value_t)]
    pub pricing: PricingArg,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PricingArg {
    #[default]
    Any,
    Cloud,
    Own,
}

#[derive(Debug, Args)]
pub struct MaxArgs {
    /// Plan options; --gpu is required.
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Debug, Args)]
pub struct GpusArgs {
    /// List the GPUs on this machine, matched to catalog entries (exit 3 without a driver).
    #[arg(long)]
    pub local: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer repeats and smaller buffers (about a minute on an H100).
    #[arg(long)]
    pub quick: bool,
    /// Also write the full profile (device, every sample, efficiency factors) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Output format of the results table.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Milliseconds between samples.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
    /// Also write the timeline as an SVG line chart.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Plan arguments to check against the measurement, e.g.
    /// "llama-2-7b --weights bf16 --context 4096 --gpu h100-sxm": the plan's total per GPU is
    /// compared with the busiest GPU's peak process-tree memory.
    #[arg(long, value_name = "PLAN ARGS")]
    pub plan: Option<String>,
    /// Output format: table (summary and chart) or json (summary and every sample).
    #[arg(long, value_enum, default_value_t)]
    pub format: WatchFormat,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    #[default]
    Table,
    Json,
}

/// The value of `watch --plan`, parsed as `plan`'s arguments.
#[derive(Debug, Parser)]
#[command(name = "--plan", no_binary_name = true)]
pub struct PlanLine {
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// Output format for every command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
    Markdown,
    Csv,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A model directory, config.json, .safetensors, model.safetensors.index.json or .gguf.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// A built-in model id (headroom models), a path to a model directory, config.json,
    /// .safetensors, model.safetensors.index.json or .gguf, or a Hugging Face repo id
    /// (owner/name[@revision]): its snapshot in the local Hub cache (HF_HUB_CACHE, else
    /// ~/.cache/huggingface/hub), else the built-in model of that repo. No network.
    pub model: String,
    /// Weight format (headroom formats lists them). Default: the checkpoint's own format
    /// (bf16 for most; a local file's stored types).
    #[arg(long)]
    pub weights: Option<String>,
    /// KV-cache format: bf16, fp16, fp8, q8_0, q4_0, or mlx-lm's mlx-4bit and mlx-8bit
    /// (`--kv-bits 4` or `8`). Default: the compute dtype (bf16).
    #[arg(long = "kv-cache")]
    pub kv_cache: Option<String>,
    /// Tokens per sequence (prompt + generated). Default: 4096 or the model's maximum,
    /// whichever is smaller.
    #[arg(long)]
    pub context: Option<u64>,
    /// Sequences processed together.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// GPU id and optional count, e.g. a100-80gb or rtx-4090:2. Absent: memory only.
    #[arg(long)]
    pub gpu: Option<String>,
    /// GiB other processes already hold on each GPU (a desktop session, another job; `headroom
    /// gpus --local` shows it): the verdict uses what is left.
    #[arg(long, value_name = "GIB")]
    pub in_use: Option<f64>,
    /// Apple silicon: the GiB macOS lets the GPU wire after `sudo sysctl iogpu.wired_limit_mb=N`
    /// (N / 1024). Default: macOS's own limit (Metal's recommendedMaxWorkingSetSize, `headroom
    /// gpus` lists it as usable).
    #[arg(long, value_name = "GIB")]
    pub wired_limit: Option<f64>,
    /// AMD Strix Halo: the GiB the amdgpu driver lets the GPU map after raising its GTT limit
    /// under Linux (`sudo amd-ttm --set N`, or the kernel option `ttm.pages_limit`), or the
    /// Variable Graphics Memory set under Windows. Default: Linux's own limit, half the RAM.
    #[arg(long, value_name = "GIB")]
    pub gtt_limit: Option<f64>,
    /// A multimodal checkpoint served or trained on text only: leave its vision encoder out
    /// (llama.cpp without --mmproj, vLLM with no image per prompt, transformers' text-only class).
    #[arg(long)]
    pub text_only: bool,
    /// Runtime: hf (transformers), vllm, llama.cpp, exllama, bare, headroom (validate's own
    /// engine), litgpt, mlx (mlx-lm on Apple silicon). Training plans: hf, litgpt, headroom, or
    /// unsloth (LoRA and QLoRA of Llama, Mistral, Qwen2 and Qwen3 dense models through Unsloth's
    /// kernels).
    /// Default: llama.cpp for GGUF inputs and formats, mlx for MLX formats, hf otherwise.
    #[arg(long)]
    pub engine: Option<String>,
    /// llama.cpp: the ggml backend of the build, as llama-bench's "backend" column shows it:
    /// cuda, metal, hip (rocm) or vulkan. AMD Radeon GPUs run hip or vulkan builds, whose decode
    /// steps cost differently; without it a Radeon plan takes the median of both. Default: cuda
    /// on NVIDIA, metal on Apple silicon.
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// How several GPUs share the model. Default: tensor for vllm, layer otherwise.
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// vLLM: fraction of each GPU's memory the instance may use (default 0.9; for a colocated
    /// rollout engine, `--rollout-engine vllm`, TRL's default 0.3).
    #[arg(long)]
    pub gpu_memory_utilization: Option<f64>,
    /// vLLM: KV block size in tokens.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1 << 16))]
    pub block_size: u64,
    /// vLLM: tokens per forward pass, the profile run's and chunked prefill's (`vllm serve`'s
    /// default: 8192 on GPUs of 70 GiB or more except A100s, else 2048; the `LLM` class uses
    /// 16384 and 8192).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 26))]
    pub max_num_batched_tokens: Option<u64>,
    /// vLLM: sequences in the sampler warm-up (default 1024 on GPUs of 70 GiB or more except
    /// A100s, else 256).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_num_seqs: Option<u64>,
    /// llama.cpp: micro-batch size (`-ub`; llama.cpp caps it at its `-b`, 2048 by default, so
    /// raise both).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub ubatch: u64,
    /// mlx-lm: prompt tokens per forward pass (`--prefill-step-size`, default 2048); smaller
    /// chunks lower the prefill peak.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub prefill_step_size: Option<u64>,
    /// mlx-lm with --kv-cache mlx-4bit or mlx-8bit: tokens the 16-bit cache holds before it is
    /// quantized (`--quantized-kv-start`, mlx_lm.generate's default 5000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1 << 24))]
    pub quantized_kv_start: Option<u64>,
    /// llama.cpp: layers offloaded to the GPUs from the back (-ngl), the output layer first (as
    /// llama.cpp counts them since December 2025), then the decoder layers; the rest and their KV
    /// cache stay in host RAM. The layer count + 1 offloads everything. Default: everything.
    #[arg(long, alias = "ngl")]
    pub n_gpu_layers: Option<u64>,
    /// llama.cpp builds before December 2025 (PR #18148): --n-gpu-layers counts decoder layers
    /// only, the output layer offloaded only above the layer count.
    #[arg(long, requires = "n_gpu_layers", conflicts_with = "fit")]
    pub ngl_output_last: bool,
    /// llama.cpp `-ts`: each GPU's share of the layers, e.g. 3,1 (one number per GPU). Default:
    /// shares of the free memory, equal on equal GPUs.
    #[arg(long, alias = "ts", value_name = "SHARES", value_delimiter = ',', conflicts_with = "fit")]
    pub tensor_split: Option<Vec<f32>>,
    /// llama.cpp: keep the routed-expert weights of the first N layers in host RAM
    /// (`--n-cpu-moe`); attention, shared experts and the KV cache stay on the GPUs.
    #[arg(long, value_name = "N", conflicts_with = "cpu_moe")]
    pub n_cpu_moe: Option<u64>,
    /// llama.cpp: keep every layer's routed-expert weights in host RAM (`--cpu-moe`).
    #[arg(long)]
    pub cpu_moe: bool,
    /// llama.cpp's `--fit` (on by default in llama-server and llama-cli since December 2025):
    /// plan the context and layer placement it chooses. Without --context it starts from the
    /// model's trained context and shortens it down to --fit-ctx; without --n-gpu-layers /
    /// --n-cpu-moe it then moves routed experts and layers to host RAM until --fit-target MiB
    /// stay free on each GPU, and on several GPUs chooses the layer split (-ts).
    #[arg(long)]
    pub fit: bool,
    /// llama.cpp `-fitt`: MiB of free memory --fit leaves on each GPU (0 to 1,048,576). Default:
    /// 1024.
    #[arg(long, value_name = "MIB", requires = "fit", value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub fit_target: Option<u64>,
    /// llama.cpp `-fitc`: the smallest context --fit chooses (1 to 16,777,216). Default: 4096.
    #[arg(long, value_name = "N", requires = "fit", value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub fit_ctx: Option<u64>,
    /// The host's RAM, for the speed of weights left there (--n-gpu-layers, --n-cpu-moe):
    /// `ddr5-6000:2` (type, MT/s, channels) or its peak bandwidth in GB/s (`96`). Default: two
    /// channels of DDR5-5600 (89.6 GB/s), a typical desktop.
    #[arg(long, value_name = "SPEC", value_parser = crate::plan::device::HostSpeed::parse)]
    pub host_memory: Option<crate::plan::device::HostSpeed>,
    /// Attention implementation: flash (no score matrix), eager (materialised scores), or
    /// xformers (Unsloth's fallback: flash-style with K and V copied to every query head).
    #[arg(long, value_enum, default_value_t)]
    pub attention: AttentionArg,
    /// Logits for every prompt position. hf: a plain forward (as evaluation does) instead of
    /// generate's last position; llama.cpp: a compute graph reserved for every ubatch token's
    /// logits, as llama-cli, llama-bench, llama-perplexity and builds before June 2026 reserve
    /// it (llama-server now reserves one row per sequence).
    #[arg(long)]
    pub logits_all: bool,
    /// vLLM: prefix caching off (`--no-enable-prefix-caching`; vLLM before 0.11 always ran
    /// hybrid models so). With it on, the default, a Gated DeltaNet hybrid's request holds two
    /// state pages per recurrent layer ("align" mode) and a Mamba-2 hybrid's one per block of
    /// context ("all" mode); without it, one.
    #[arg(long)]
    pub no_prefix_caching: bool,
    /// vLLM: speculative decoding with the checkpoint's own multi-token-prediction layers
    /// proposing K tokens per step (`--speculative-config '{"method": "mtp",
    /// "num_speculative_tokens": K}'`; Qwen3-Next, Qwen3.5, DeepSeek-V3): their weights, their
    /// attention layer's KV cache and K more state pages and conv columns per recurrent layer.
    #[arg(long, value_name = "K")]
    pub mtp: Option<u64>,
    /// vLLM `--disable-hybrid-kv-cache-manager`: a model mixing full attention with sliding-window
    /// or chunked local layers (Gemma 2/3, gpt-oss, Llama 4) caches the whole context in every
    /// layer, as vLLM does then (and, for Llama 4's chunked layers, by default from about 0.10.1
    /// until PR #29627 unless VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1, and under
    /// EAGLE drafting; also with KV connectors or KV events that do not support the manager).
    #[arg(long)]
    pub disable_hybrid_kv_cache_manager: bool,
    /// vLLM `--cpu-offload-gb`: GiB of each GPU's decoder-layer parameters (the first layers')
    /// kept in pinned host memory; every forward pass reads them over PCIe.
    #[arg(long, value_name = "GIB")]
    pub cpu_offload_gb: Option<f64>,
    /// vLLM `--enforce-eager`: no CUDA graphs. Saves the graph pool; each decode step then
    /// launches every layer's kernels from Python, which bounds small models' decode speed.
    #[arg(long)]
    pub enforce_eager: bool,
    /// A calibration JSON (per-GPU achieved bandwidth and TFLOPS, per-engine efficiencies) that
    /// replaces the default efficiency factors; shape documented in plan/throughput/efficiency.rs.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// Training options of `plan` (used when --mode is not infer).
#[derive(Clone, Debug, Args)]
pub struct TrainArgs {
    /// infer, or a training mode: full, lora, qlora, dpo, ppo, grpo, best-of-n (rejection
    /// sampling: --group-size completions per prompt, scored by --reward, then a supervised step).
    #[arg(long, value_enum, default_value_t)]
    pub mode: ModeArg,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t)]
    pub optimizer: OptimizerArg,
    /// mixed: 16-bit weights + fp32 master (LoRA: fp32 adapters); bf16: pure bf16 (LitGPT
    /// bf16-true); amp: fp32 parameters under bf16 autocast (LitGPT bf16-mixed; a 4-bit base
    /// keeps its 16-bit embeddings and lm_head). Default: mixed; bf16 for a bitsandbytes base
    /// (nf4, nf4-dq, int8) under --engine hf (TRL 0.26 and later cast its adapters to bf16; peft
    /// with transformers' Trainer keeps them fp32: give mixed); with --engine litgpt its own
    /// default, bf16-mixed, or bf16-true for a 4-bit base.
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// The training loop runs without torch.autocast (a plain PyTorch loop over 16-bit weights):
    /// fp32 LoRA adapters (--precision mixed) then save fp32 copies of their inputs instead of
    /// the bf16 ones transformers' Trainer with bf16=True (autocast) saves.
    #[arg(long)]
    pub no_autocast: bool,
    /// Activation checkpointing. Default: none; with --engine unsloth, offload (Unsloth's
    /// use_gradient_checkpointing="unsloth", get_peft_model's default).
    #[arg(long, value_enum)]
    pub checkpointing: Option<CheckpointingArg>,
    /// ZeRO / FSDP stage over the data-parallel ranks (0 = none).
    #[arg(long, default_value_t = 0)]
    pub zero: u8,
    /// Tensor-parallel degree (with sequence parallelism).
    #[arg(long, default_value_t = 1)]
    pub tp: u64,
    /// Pipeline-parallel degree (1F1B).
    #[arg(long, default_value_t = 1)]
    pub pp: u64,
    /// CPU offload of optimizer states, or of parameters too (ZeRO-3).
    #[arg(long, value_enum, default_value_t)]
    pub offload: OffloadArg,
    /// Micro-batches accumulated per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: u64,
    /// Step each parameter inside the backward pass as soon as its gradient is complete, then
    /// free the gradient (torchtune `optimizer_in_bwd: True`): one gradient lives at a time
    /// instead of all. Needs --grad-accum 1.
    #[arg(long)]
    pub optimizer_in_backward: bool,
    /// LoRA rank (default 8). For dpo/ppo/grpo, giving it trains the policy with LoRA.
    #[arg(long)]
    pub lora_rank: Option<u64>,
    /// LoRA dropout probability on the adapters' input (peft's default 0; LitGPT uses 0.05):
    /// when positive, each adapter saves its own dropped input and a mask.
    #[arg(long, default_value_t = 0.0)]
    pub lora_dropout: f64,
    /// LoRA targets: all-linear, attention, or module names such as q_proj,v_proj.
    #[arg(long, default_value = "all-linear")]
    pub lora_targets: String,
    /// dpo/ppo/grpo reference model id, or "precomputed" (dpo: reference log-probs on disk).
    #[arg(long)]
    pub reference: Option<String>,
    /// ppo critic model id (default: the policy's model).
    #[arg(long)]
    pub critic: Option<String>,
    /// ppo / best-of-n reward model id (default: the policy's model).
    #[arg(long)]
    pub reward: Option<String>,
    /// grpo / best-of-n completions generated per prompt.
    #[arg(long, default_value_t = 8)]
    pub group_size: u64,
    /// ppo / grpo / best-of-n: tokens generated per completion (the end of --context); with --gpu the
    /// training speed then includes the rollout (generation and scoring).
    #[arg(long)]
    pub response_tokens: Option<u64>,
    /// ppo / grpo / best-of-n: what generates the rollouts: hf (transformers generate in the
    /// training process, TRL's default), vllm (vLLM colocated on the training GPUs, holding
    /// --gpu-memory-utilization of each: TRL `use_vllm` colocate mode, OpenRLHF and veRL hybrid
    /// engines) or vllm-server (vLLM on other GPUs: TRL `vllm_mode="server"`).
    #[arg(long, default_value = "hf", value_parser = ["hf", "vllm", "vllm-server"])]
    pub rollout_engine: String,
    /// Chunked cross-entropy: compute the logits and loss this many tokens at a time
    /// (recomputed in backward), instead of the whole sequence at once.
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1..))]
    pub loss_chunk: Option<u64>,
    /// Nodes of `--gpu ID:COUNT` GPUs each (data parallel across them; training speed).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub nodes: u64,
    /// Bandwidth between nodes per GPU and direction, GB/s (default: InfiniBand NDR 400 Gb/s).
    #[arg(long, default_value_t = crate::plan::throughput::training::DEFAULT_INTER_NODE_GB_S)]
    pub inter_node_gb_s: f64,
    /// Do not overlap the gradient all-reduce with the backward pass.
    #[arg(long)]
    pub no_overlap: bool,
    /// Tokens to train on: adds the time to train and its cost (catalog price × GPUs).
    #[arg(long, value_name = "TOKENS")]
    pub train_tokens: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    #[default]
    Infer,
    Full,
    Lora,
    Qlora,
    Dpo,
    Ppo,
    Grpo,
    BestOfN,
    /// LLaMA-Adapter (LitGPT `finetune/adapter.py`): learned prompts and zero-init gates.
    Adapter,
    /// LLaMA-Adapter v2 (LitGPT `finetune/adapter_v2.py`): adds a bias and scale to every linear
    /// layer and trains the norms.
    AdapterV2,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    #[default]
    Adamw,
    #[value(name = "adamw-8bit")]
    Adamw8bit,
    #[value(name = "paged-adamw-8bit")]
    PagedAdamw8bit,
    /// bitsandbytes PagedAdamW32bit (transformers `optim="paged_adamw_32bit"`, the QLoRA
    /// paper's): fp32 m and v in unified memory
    #[value(name = "paged-adamw-32bit")]
    PagedAdamw32bit,
    Sgd,
    Adafactor,
    Lion,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    #[default]
    Mixed,
    Bf16,
    Amp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckpointingArg {
    None,
    Selective,
    Full,
    /// Full checkpointing with the saved layer inputs in host RAM, copied on a stream of their
    /// own (torchtune `enable_activation_offloading`, TRL `activation_offloading=True`, axolotl
    /// `activation_offloading: true`, Unsloth `use_gradient_checkpointing="unsloth"`)
    Offload,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OffloadArg {
    #[default]
    None,
    Optimizer,
    Params,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Cuda,
    Metal,
    #[value(alias = "rocm")]
    Hip,
    Vulkan,
}

impl BackendArg {
    pub fn ggml(self) -> crate::plan::engine::GgmlBackend {
        use crate::plan::engine::GgmlBackend;
        match self {
            BackendArg::Cuda => GgmlBackend::Cuda,
            BackendArg::Metal => GgmlBackend::Metal,
            BackendArg::Hip => GgmlBackend::Hip,
            BackendArg::Vulkan => GgmlBackend::Vulkan,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Tensor,
    Layer,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AttentionArg {
    #[default]
    Flash,
    Eager,
    /// Unsloth's attention when flash-attn is not installed but xFormers is (its Colab and Kaggle
    /// notebooks install xFormers): flash-style, with grouped-query K and V copied to every
    /// query head first (training with --engine unsloth only)
    Xformers,
}
