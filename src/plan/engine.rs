//! Runtime profiles: what each inference engine allocates besides weights and KV cache, with
//! every constant named and sourced. The planner's arithmetic is engine-independent; these
//! profiles say which terms apply and how large the fixed ones are.

use super::device::{Device, Generation};
use crate::quant::{KvFormat, WeightFormat};
use crate::units::{Bytes, MIB};
use serde::Serialize;
use thiserror::Error;

/// An inference runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Hugging Face transformers (`generate`, SDPA attention, DynamicCache).
    Hf,
    /// vLLM: paged KV cache sized by `gpu_memory_utilization`.
    Vllm,
    /// llama.cpp (ggml CUDA backend): KV for `n_ctx` cells, compute buffers per micro-batch.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// ExLlama: GPTQ kernels, preallocated fp16 cache and temporary buffers.
    Exllama,
    /// Weights, KV cache and the unavoidable live activations only: a lower bound.
    Bare,
    /// headroom's own engine, the one `headroom validate` runs: our kernels and cuBLAS, one
    /// weight slab, a KV cache for the whole context, one activation arena and a workspace.
    Headroom,
    /// LitGPT (Lightning AI): plain PyTorch like transformers, but Fabric's bitsandbytes plugin
    /// quantizes every `nn.Linear`, lm_head included (with bitsandbytes 0.42, which LitGPT pins,
    /// or 0.41 in its 2023 resource tables), and `GPT` builds lm_head and the embedding as two
    /// matrices even for tied checkpoints.
    Litgpt,
    /// Apple's MLX through mlx-lm (`mlx_lm.generate`, `mlx_lm.server`) on Apple silicon: MLX's
    /// own quantized checkpoints, a KV cache grown in steps of 256 tokens, prompts evaluated in
    /// chunks of 2,048 tokens.
    Mlx,
    /// Unsloth (unslothai/unsloth with unsloth-zoo): LoRA and QLoRA fine-tuning through its own
    /// autograd functions, Triton kernels, offloaded checkpointing and chunked fused loss
    /// (training plans only; see plan/training/unsloth.rs).
    Unsloth,
}

#[derive(Debug, Error, PartialEq)]
#[error("unknown engine '{0}'; use one of hf, vllm, llama.cpp, exllama, bare, headroom, litgpt, mlx, unsloth")]
pub struct UnknownEngine(pub String);

impl Engine {
    /// The inference engines (Unsloth only trains).
    pub const ALL: [Engine; 8] = [
        Engine::Hf,
        Engine::Vllm,
        Engine::LlamaCpp,
        Engine::Exllama,
        Engine::Bare,
        Engine::Headroom,
        Engine::Litgpt,
        Engine::Mlx,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Engine::Hf => "hf",
            Engine::Vllm => "vllm",
            Engine::LlamaCpp => "llama.cpp",
            Engine::Exllama => "exllama",
            Engine::Bare => "bare",
            Engine::Headroom => "headroom",
            Engine::Litgpt => "litgpt",
            Engine::Mlx => "mlx",
            Engine::Unsloth => "unsloth",
        }
    }

    pub fn parse(s: &str) -> Result<Engine, UnknownEngine> {
        let lc = s.to_ascii_lowercase();
        match lc.as_str() {
            "hf" | "transformers" => Ok(Engine::Hf),
            "vllm" => Ok(Engine::Vllm),
            "llama.cpp" | "llamacpp" | "llama-cpp" | "gguf" => Ok(Engine::LlamaCpp),
            "exllama" | "exllamav2" => Ok(Engine::Exllama),
            "bare" => Ok(Engine::Bare),
            "headroom" => Ok(Engine::Headroom),
            "litgpt" | "lit-gpt" => Ok(Engine::Litgpt),
            "mlx" | "mlx-lm" | "mlx_lm" => Ok(Engine::Mlx),
            "unsloth" => Ok(Engine::Unsloth),
            _ => Err(UnknownEngine(s.to_string())),
        }
    }

    /// Whether the engine runs on PyTorch (and so pays PyTorch's CUDA context and kernels).
    pub fn uses_torch(self) -> bool {
        matches!(self, Engine::Hf | Engine::Vllm | Engine::Exllama | Engine::Litgpt | Engine::Unsloth)
    }

    /// Whether a tied checkpoint's embedding and lm_head become two matrices: LitGPT's `GPT`
    /// always builds `transformer.wte` and `lm_head` as separate parameters; llama.cpp keeps
    /// `token_embd` in host memory and loads a duplicate of it as the output layer on the GPU
    /// (`TENSOR_DUPLICATED`: Qwen3-4B Q4_K_M logs 2,375.91 MiB of CUDA model buffer, the
    /// 304.28 MiB table more than the layers).
    pub fn unties_embeddings(self) -> bool {
        matches!(self, Engine::Litgpt | Engine::LlamaCpp)
    }

    /// Whether the engine loads a multimodal checkpoint's vision encoder and projector. LitGPT's
    /// Gemma 3 is text only: `convert_hf_checkpoint.py` (`copy_weights_gemma_3`) skips every
    /// `vision_tower` and `multi_modal_projector` tensor. The others load them (transformers'
    /// `Gemma3ForConditionalGeneration`, vLLM's `gemma3_mm`, llama.cpp's mmproj). mlx-lm loads
    /// the language model only (images are mlx-vlm's, another program).
    pub fn builds_vision_tower(self) -> bool {
        !matches!(self, Engine::Litgpt | Engine::Mlx)
    }

    /// Whether 4-bit bitsandbytes quantization covers the output projection too: LitGPT's
    /// Fabric plugin replaces every `nn.Linear`; transformers keeps lm_head in 16-bit
    /// (`llm_int8_skip_modules` defaults to the output embedding).
    pub fn quantizes_lm_head(self) -> bool {
        self == Engine::Litgpt
    }

    /// Bytes per element of the transient a multi-token GEMM on quantized weights allocates
    /// when it dequantizes the whole matrix first (0 for engines with fused or preallocated
    /// dequantization, and for LLM.int8(), whose matmul runs on the int8 codes).
    /// bitsandbytes' `matmul_4bit` runs `dequantize_4bit(W).to(compute dtype)`: one 16-bit copy
    /// when the stored dtype is the compute dtype (transformers loads bf16 weights and computes
    /// in bf16); two under LitGPT, whose bitsandbytes (0.41 and 0.42; 0.43 dropped the cast)
    /// casts each weight to fp16 before quantizing (`Params4bit.cuda`: `.half()`), so the fp16
    /// result is copied to bf16 while it is still alive. transformers' GPTQ and AWQ kernels
    /// dequantize a prompt's weights into one 16-bit matrix too (AWQ's GEMM path above its batch
    /// threshold, exllamav2's `temp_dq`).
    pub fn dequantized_bytes_per_weight(self, format: WeightFormat) -> u64 {
        use crate::quant::stored::QuantScheme as Q;
        match (self, format) {
            (Engine::Litgpt, WeightFormat::Quantized(Q::Nf4 | Q::Nf4Double)) => 4,
            (Engine::Hf, WeightFormat::Quantized(Q::Nf4 | Q::Nf4Double | Q::GptqG128 | Q::GptqG32 | Q::AwqG128)) => 2,
            _ => 0,
        }
    }

    /// The GGUF type llama.cpp runs for a checkpoint published in a format it cannot load, when
    /// no `--weights` is given: gpt-oss's MXFP4 experts stay MXFP4 (`convert_hf_to_gguf.py`
    /// writes MXFP4_MOE, as ggml-org's own gpt-oss GGUFs are), and an FP8 checkpoint (DeepSeek-V3,
    /// Kimi K2) converts through bf16 to the 8-bit Q8_0, the size class of the release. `None`
    /// where the engine loads it or no such conversion is standard.
    pub fn gguf_for_checkpoint(self, native: WeightFormat) -> Option<(WeightFormat, &'static str)> {
        use crate::quant::gguf::GgufFileType as G;
        use crate::quant::stored::QuantScheme as Q;
        match (self, native) {
            (Engine::LlamaCpp, WeightFormat::Quantized(Q::Mxfp4)) => Some((
                WeightFormat::Gguf(G::Mxfp4Moe),
                "convert_hf_to_gguf.py keeps the MXFP4 experts (GGUF MXFP4_MOE, as ggml-org's gpt-oss GGUFs); pass --weights for another type",
            )),
            (Engine::LlamaCpp, WeightFormat::Quantized(Q::Fp8Block | Q::Fp8Channel | Q::Fp8Tensor)) => Some((
                WeightFormat::Gguf(G::Q8_0),
                "llama.cpp converts an FP8 checkpoint through bf16; Q8_0 keeps its 8 bits a weight; pass --weights for another type",
            )),
            _ => None,
        }
    }

    /// Whether the engine loads weights stored in `format` as they are; `Err` says what to plan
    /// instead. llama.cpp runs GGUF files (float checkpoints convert to GGUF F32/F16/BF16 at
    /// the same size); ExLlama runs GPTQ and 16-bit checkpoints (exllamav2 README); transformers
    /// dequantizes a GGUF file to the torch dtype on load (transformers docs, "GGUF and
    /// interaction with Transformers"); headroom's engine runs bf16/fp16 and 4-bit group-128 GPTQ
    /// or AWQ (validate).
    pub fn loads(self, format: WeightFormat) -> Result<(), &'static str> {
        use crate::quant::stored::{FloatType as F, QuantScheme as Q};
        match (self, format) {
            (Engine::LlamaCpp, WeightFormat::Quantized(_)) => {
                Err("llama.cpp runs GGUF files: plan a GGUF type (headroom formats lists them, e.g. q4_k_m) or a float checkpoint")
            }
            (Engine::Exllama, WeightFormat::Float(F::F16 | F::Bf16))
            | (Engine::Exllama, WeightFormat::Quantized(Q::GptqG128 | Q::GptqG32 | Q::Gptq8G128)) => Ok(()),
            (Engine::Exllama, _) => Err("ExLlama runs GPTQ and 16-bit checkpoints: plan --weights gptq or fp16, or another engine"),
            (Engine::Hf, WeightFormat::Gguf(_)) => {
                Err("transformers dequantizes GGUF files on load: plan the loaded model with --weights fp16 or bf16, or use --engine llama.cpp")
            }
            (Engine::Headroom, WeightFormat::Float(F::F16 | F::Bf16))
            | (Engine::Headroom, WeightFormat::Quantized(Q::GptqG128 | Q::AwqG128)) => Ok(()),
            (Engine::Headroom, _) => Err("headroom's engine runs bf16, fp16, gptq and awq weights"),
            (Engine::Litgpt, WeightFormat::Float(_))
            | (Engine::Litgpt, WeightFormat::Quantized(Q::Nf4 | Q::Nf4Double | Q::Int8Row)) => Ok(()),
            (Engine::Litgpt, _) => {
                Err("LitGPT quantizes with bitsandbytes: plan --weights nf4, nf4-dq or int8, or a float checkpoint")
            }
            (Engine::Unsloth, WeightFormat::Float(F::F16 | F::Bf16))
            | (Engine::Unsloth, WeightFormat::Quantized(Q::Nf4 | Q::Nf4Double)) => Ok(()),
            (Engine::Unsloth, _) => {
                Err("Unsloth trains a 16-bit or bitsandbytes 4-bit base: plan --weights bf16, fp16, nf4 or nf4-dq")
            }
            (Engine::Mlx, WeightFormat::Float(_))
            | (Engine::Mlx, WeightFormat::Quantized(Q::Mxfp4)) => Ok(()),
            (Engine::Mlx, WeightFormat::Quantized(q)) if q.is_mlx() => Ok(()),
            (Engine::Mlx, _) => {
                Err("mlx-lm runs MLX checkpoints: plan --weights mlx-4bit (mlx-3bit, mlx-6bit, mlx-8bit, mxfp4-q8), mxfp4 or a float checkpoint")
            }
            (_, WeightFormat::Quantized(q)) if q.is_mlx() => {
                Err("MLX's affine checkpoints run in mlx-lm on Apple silicon: add --engine mlx")
            }
            _ => Ok(()),
        }
    }

    /// Whether the engine can keep its KV cache in `kv`; `Err` says what it offers. vLLM
    /// quantizes the cache to FP8 only (`--kv-cache-dtype fp8`); llama.cpp's `--cache-type-k/v`
    /// take f16, bf16 and GGML block types, not FP8; transformers' quantized caches
    /// (`cache_implementation="quantized"`: quanto int2/int4, HQQ up to 8 bits) are integer, closest
    /// to q4_0 and q8_0; headroom's engine keeps bf16; mlx-lm keeps 16-bit or its own
    /// `QuantizedKVCache` (`--kv-bits 4` or `8`).
    pub fn stores_kv(self, kv: KvFormat) -> Result<(), &'static str> {
        use KvFormat as K;
        match (self, kv) {
            (Engine::Mlx, K::Bf16 | K::Fp16 | K::Mlx4 | K::Mlx8) => Ok(()),
            (Engine::Mlx, _) => Err("mlx-lm keeps a 16-bit cache or quantizes it itself (--kv-bits): use --kv-cache bf16, mlx-4bit or mlx-8bit"),
            (_, K::Mlx4 | K::Mlx8) => {
                Err("mlx-4bit and mlx-8bit are mlx-lm's quantized caches: add --engine mlx, or use q4_0, q8_0 or fp8")
            }
            (Engine::Vllm, K::Q8_0 | K::Q4_0) => Err("vLLM quantizes the KV cache to fp8 only: use --kv-cache fp8"),
            (Engine::LlamaCpp, K::Fp8) => Err("llama.cpp has no FP8 cache: use --kv-cache q8_0"),
            (Engine::Hf, K::Fp8) => {
                Err("transformers' quantized caches are integer (quanto, HQQ): use --kv-cache q4_0 or q8_0")
            }
            (Engine::Headroom, K::Bf16) => Ok(()),
            (Engine::Headroom, _) => Err("headroom's engine keeps a bf16 KV cache"),
            (Engine::Litgpt, K::Bf16) => Ok(()),
            (Engine::Litgpt, _) => Err("LitGPT keeps the KV cache in the model's 16-bit dtype: use --kv-cache bf16"),
            _ => Ok(()),
        }
    }

    /// Whether the engine keeps the token-embedding table in host memory (llama.cpp runs the
    /// embedding lookup on the CPU; ExLlama v1 keeps `embed_tokens` on the CPU).
    pub fn embeddings_on_host(self) -> bool {
        matches!(self, Engine::LlamaCpp | Engine::Exllama)
    }
}

/// The ggml backend a llama.cpp build runs on, as llama-bench's "backend" column names it
/// (CUDA, Metal, ROCm, Vulkan). NVIDIA GPUs are planned on CUDA and Apple silicon on Metal; AMD
/// Radeon GPUs run HIP (ROCm) builds or Vulkan builds, whose decode steps cost differently
/// (`Efficiency::on_ggml_backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GgmlBackend {
    Cuda,
    Metal,
    Hip,
    Vulkan,
}

impl GgmlBackend {
    pub fn id(self) -> &'static str {
        match self {
            GgmlBackend::Cuda => "cuda",
            GgmlBackend::Metal => "metal",
            GgmlBackend::Hip => "hip",
            GgmlBackend::Vulkan => "vulkan",
        }
    }

    /// The one backend the planner models on a generation, where there is one choice: CUDA on
    /// NVIDIA, Metal on Apple silicon, HIP on AMD Instinct (llama.cpp does not run on Gaudi).
    /// Radeon GPUs run either HIP or Vulkan.
    pub fn native(generation: Generation) -> Option<GgmlBackend> {
        match generation {
            Generation::Apple => Some(GgmlBackend::Metal),
            Generation::Other => Some(GgmlBackend::Hip),
            Generation::Rdna => None,
            _ => Some(GgmlBackend::Cuda),
        }
    }

    /// Why this backend is not planned on a generation, or `None` when it is.
    pub fn refused_on(self, generation: Generation) -> Option<&'static str> {
        use GgmlBackend::*;
        let runs = GgmlBackend::native(generation).map_or(matches!(self, Hip | Vulkan), |native| self == native);
        (!runs).then_some(match generation {
            Generation::Rdna => "AMD Radeon GPUs run llama.cpp's hip (ROCm) or vulkan backend",
            Generation::Other => "AMD Instinct GPUs run llama.cpp's hip (ROCm) backend",
            Generation::Apple => "Apple silicon runs llama.cpp's metal backend",
            _ if self == Vulkan => {
                "llama.cpp's Vulkan backend is modelled on AMD Radeon GPUs only: plan NVIDIA GPUs with --backend cuda"
            }
            _ => "NVIDIA GPUs run llama.cpp's cuda backend",
        })
    }

    /// The runtime context's name in the memory table.
    fn context_name(backend: Option<GgmlBackend>) -> &'static str {
        match backend {
            Some(GgmlBackend::Cuda) => "CUDA context (ggml)",
            Some(GgmlBackend::Metal) => "Metal context (ggml)",
            Some(GgmlBackend::Hip) => "HIP context (ggml)",
            Some(GgmlBackend::Vulkan) => "Vulkan context (ggml)",
            None => "HIP / Vulkan context (ggml)",
        }
    }
}

/// Engine knobs a user may set; `None` means the engine's own default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineOptions {
    /// vLLM `--gpu-memory-utilization`: the fraction of the whole card this instance may use.
    pub gpu_memory_utilization: f64,
    /// vLLM KV block size in tokens.
    pub block_size: u64,
    /// vLLM `--max-num-batched-tokens` (profile-run size); default depends on the GPU.
    pub max_num_batched_tokens: Option<u64>,
    /// vLLM `--max-num-seqs` (sampler warm-up batch); default depends on the GPU.
    pub max_num_seqs: Option<u64>,
    /// llama.cpp `--ubatch-size`.
    pub n_ubatch: u64,
    /// llama.cpp `--n-gpu-layers`: N units from the back run on the GPUs, the output layer the
    /// first of them (since PR #18148, December 2025), then the decoder layers with their KV
    /// cache; the rest stay on the host. `None`: all.
    pub gpu_layers: Option<u64>,
    /// llama.cpp builds before PR #18148 (December 2025): `--n-gpu-layers` counts decoder layers
    /// only, the last N, and the output layer joins them only above the layer count.
    pub ngl_output_last: bool,
    /// llama.cpp: the decoder layers that keep their routed-expert weights in host RAM:
    /// `--n-cpu-moe N` the first N (`--cpu-moe`: all), `--fit` the back of the GPU layers it
    /// could not give experts room for; empty keeps every weight on the GPUs.
    pub cpu_moe: LayerSet,
    /// llama.cpp's units per GPU (`-ts` as `--fit` writes it): decoder layers from the first on
    /// the GPUs, then the output layer when it is there, in consecutive runs of these lengths.
    /// `None`: llama.cpp's own split by free memory (other engines: even runs of layers).
    pub layer_split: Option<Vec<u64>>,
    /// Attention without materialised scores (FlashAttention / SDPA). Off means eager
    /// attention with the full score matrix.
    pub flash_attention: bool,
    /// hf: a plain forward over the whole prompt returning every position's logits (evaluation
    /// or loss computation) instead of `generate`, which keeps only the last position.
    /// llama.cpp: the compute graph reserved for every ubatch token's logits (llama-cli,
    /// llama-bench, llama-perplexity, builds before June 2026) instead of llama-server's one per
    /// sequence.
    pub logits_all_positions: bool,
    /// vLLM prefix caching (on by default since vLLM's V1 engine). A request of a Gated DeltaNet
    /// hybrid then holds two state pages per recurrent layer group ("align" mode), of a Mamba-2
    /// hybrid one per block of context ("all" mode), instead of one (`MambaSpec.max_memory_usage_bytes`).
    pub prefix_caching: bool,
    /// vLLM multi-token-prediction speculative decoding: draft tokens per step
    /// (`num_speculative_tokens`), 0 when off.
    pub mtp_tokens: u64,
    /// vLLM's hybrid KV cache manager (on by default): layers of different kinds (full,
    /// sliding-window, chunked local attention) keep separate block groups. Off
    /// (`--disable-hybrid-kv-cache-manager`) every layer of a mixed model caches the whole context.
    pub hybrid_kv_cache_manager: bool,
    /// vLLM `--cpu-offload-gb`, in bytes: each GPU keeps this much of its decoder-layer
    /// parameters in pinned host memory, read over PCIe by every forward pass.
    pub cpu_offload_bytes: u64,
    /// mlx-lm `--prefill-step-size`: the prompt is evaluated in chunks of this many tokens.
    pub prefill_step_size: u64,
    /// mlx-lm `--quantized-kv-start`: with `--kv-bits`, each layer's 16-bit cache is converted to
    /// the quantized one after the first prompt chunk (or decode step) that leaves it holding at
    /// least this many tokens; a shorter context never leaves the 16-bit cache.
    pub quantized_kv_start: u64,
    /// llama.cpp: the ggml backend of the build. `None`: the GPU's own (CUDA, Metal), or on AMD
    /// Radeon GPUs either HIP or Vulkan.
    pub ggml_backend: Option<GgmlBackend>,
    /// vLLM `--enforce-eager`: no CUDA graphs. No graph pool is held, and every decode step
    /// launches each layer's kernels from Python, so a small model's step waits on the host.
    pub enforce_eager: bool,
}

/// llama.cpp's split of `units` (decoder layers on the GPUs, then the output layer) by `shares`,
/// one per GPU: its free memory by default, or `-ts`. Unit k goes to the first GPU whose running
/// share, normalized, exceeds k / units, in f32 as `get_layer_buft_list` computes it; with equal
/// shares GPU d takes units ⌈d·U/n⌉ to ⌈(d+1)·U/n⌉. Llama-2-70B's 80 layers and output layer over
/// two equal GPUs: 41 and 40, the output layer with the second's 39 layers.
pub fn llama_cpp_runs(units: u64, shares: &[f32]) -> Vec<u64> {
    let total: f32 = shares.iter().sum();
    let mut running = 0.0f32;
    let edges: Vec<f32> = shares
        .iter()
        .map(|s| {
            running += s;
            running / total
        })
        .collect();
    let mut runs = vec![0; shares.len()];
    for k in 0..units {
        let at = k as f32 / units as f32;
        let gpu = edges.iter().position(|&e| e > at).unwrap_or(shares.len() - 1);
        runs[gpu] += 1;
    }
    runs
}

/// Decoder layers as sorted, disjoint, non-empty ranges: those whose routed experts llama.cpp
/// keeps in host RAM (`--n-cpu-moe N`: one range from 0; `--fit`: the back of each GPU's run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LayerSet(Vec<std::ops::Range<u64>>);

impl LayerSet {
    /// The union of `ranges`, which must come in order without overlapping.
    pub fn new(ranges: impl IntoIterator<Item = std::ops::Range<u64>>) -> Self {
        let mut set: Vec<std::ops::Range<u64>> = Vec::new();
        for r in ranges.into_iter().filter(|r| !r.is_empty()) {
            match set.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => set.push(r),
            }
        }
        LayerSet(set)
    }

    /// Layers `0..n`.
    pub fn first(n: u64) -> Self {
        LayerSet::new(std::iter::once(0..n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[std::ops::Range<u64>] {
        &self.0
    }

    /// The layers of this set inside `layers`.
    pub fn within(&self, layers: std::ops::Range<u64>) -> LayerSet {
        LayerSet::new(self.0.iter().map(|r| r.start.max(layers.start)..r.end.min(layers.end)))
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(Clone::clone)
    }

    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| r.end - r.start).sum()
    }
}

impl std::fmt::Display for LayerSet {
    /// `12–35`, or `9–20, 30–35`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| format!("{}–{}", r.start, r.end - 1)).collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// Where llama.cpp's `--n-gpu-layers` and `--n-cpu-moe` leave weights in host RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPlacement {
    /// Decoder layers `0..gpu_start` stay whole on the host with their KV cache (llama.cpp's
    /// `i_gpu_start = n_layer + 1 − n_gpu_layers`, before December 2025 `n_layer −
    /// n_gpu_layers`); the rest run on the GPUs.
    pub gpu_start: u64,
    /// Layers that keep their routed experts on the host (those of them on the GPUs matter).
    pub cpu_moe: LayerSet,
    /// The final norm and lm_head run on the last GPU (`--n-gpu-layers` of 1 or more, before
    /// December 2025 above the layer count, or absent).
    pub output_on_gpu: bool,
}

impl HostPlacement {
    /// Layers on the GPUs whose routed experts stay in host RAM.
    pub fn expert_layers(&self) -> LayerSet {
        self.cpu_moe.within(self.gpu_start..u64::MAX)
    }

    /// llama.cpp's units on the GPUs of a model of `num_layers` layers: its decoder layers there,
    /// then the output layer.
    pub fn units(&self, num_layers: u64) -> u64 {
        num_layers - self.gpu_start + u64::from(self.output_on_gpu)
    }

    /// Whether any weight stays in host RAM.
    pub fn any(&self) -> bool {
        self.gpu_start > 0 || !self.expert_layers().is_empty() || !self.output_on_gpu
    }
}

/// The fewest tokens in a pass for which llama.cpp's CUDA backend runs matmuls on host weights
/// itself, copying them over (`min_batch_size` in `ggml_backend_cuda_device_offload_op`).
pub const OP_OFFLOAD_MIN_TOKENS: u64 = 32;

/// ExLlama's `max_input_len`: it evaluates each prompt in chunks of this many tokens.
pub const EXLLAMA_PROMPT_CHUNK: u64 = 2048;

/// mlx-lm's default `prefill_step_size` (`generate_step`, 2,048 since 2025; 512 before): the
/// prompt is evaluated in chunks of this many tokens, the cache cleared after each.
pub const MLX_PROMPT_CHUNK: u64 = 2048;

/// mlx_lm.generate's `DEFAULT_QUANTIZED_KV_START` (the Python `generate_step` defaults to 0).
pub const MLX_QUANTIZED_KV_START: u64 = 5000;

/// Prompts mlx-lm's `BatchGenerator` prefills together (`prefill_batch_size`).
pub const MLX_PREFILL_BATCH: u64 = 8;

/// mlx-lm's `KVCache.step`: each layer's keys and values grow in blocks of this many tokens.
pub const MLX_KV_STEP: u64 = 256;

impl EngineOptions {
    /// Tokens one forward pass over `batch` prompts of `context` tokens takes: llama.cpp's
    /// ubatch, ExLlama's 2,048-token chunks of each prompt and mlx-lm's `prefill_step_size` ones
    /// (up to 8 prompts at once), vLLM's chunked-prefill budget
    /// `vllm_chunk`; transformers, LitGPT and the bare and headroom engines all at once. Never
    /// more than the prompts hold. Llama-3-8B at 8,096 tokens under llama.cpp: 512.
    pub fn prompt_pass_tokens(&self, engine: Engine, context: u64, batch: u64, vllm_chunk: u64) -> u64 {
        let all = context * batch;
        match engine {
            Engine::LlamaCpp => self.n_ubatch,
            Engine::Exllama => EXLLAMA_PROMPT_CHUNK * batch,
            Engine::Mlx => self.prefill_step_size * batch.min(MLX_PREFILL_BATCH),
            Engine::Vllm => vllm_chunk,
            Engine::Hf | Engine::Unsloth | Engine::Litgpt | Engine::Bare | Engine::Headroom => all,
        }
        .clamp(1, all.max(1))
    }

    /// The host placement these options give a model of `num_layers` decoder layers.
    pub fn host_placement(&self, num_layers: u64) -> HostPlacement {
        let units = self.gpu_layers.map_or(num_layers + 1, |n| n.min(num_layers + 1));
        let (decoder_layers, output_on_gpu) = match self.ngl_output_last {
            true => (units.min(num_layers), units > num_layers),
            false => (units.saturating_sub(1), units > 0),
        };
        HostPlacement {
            gpu_start: num_layers - decoder_layers,
            cpu_moe: self.cpu_moe.within(0..num_layers),
            output_on_gpu,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            gpu_memory_utilization: 0.9,
            block_size: 16,
            max_num_batched_tokens: None,
            max_num_seqs: None,
            n_ubatch: 512,
            gpu_layers: None,
            ngl_output_last: false,
            cpu_moe: LayerSet::default(),
            layer_split: None,
            flash_attention: true,
            logits_all_positions: false,
            prefix_caching: true,
            mtp_tokens: 0,
            hybrid_kv_cache_manager: true,
            cpu_offload_bytes: 0,
            prefill_step_size: MLX_PROMPT_CHUNK,
            quantized_kv_start: MLX_QUANTIZED_KV_START,
            ggml_backend: None,
            enforce_eager: false,
        }
    }
}

/// A constant with its provenance.
pub struct Constant {
    pub name: &'static str,
    pub bytes: Bytes,
    pub source: &'static str,
}

/// CUDA context: what the driver takes per process before the first allocation, including the
/// loaded kernel images. PyTorch-based engines load far more kernels than ggml.
pub fn cuda_context(engine: Engine, generation: Generation, ggml_backend: Option<GgmlBackend>) -> Constant {
    if engine == Engine::Headroom {
        return Constant {
            name: "CUDA context (headroom)",
            bytes: Bytes::from_mib(250),
            source: "not yet measured: a non-PyTorch CUDA process with cuBLAS, as gguf-parser's 250 MiB; validate's 'context' phase measures it",
        };
    }
    if engine == Engine::Mlx {
        return Constant {
            name: "Metal context (MLX)",
            bytes: Bytes::ZERO,
            source: "mlx-lm's peak memory (mx.get_peak_memory) counts MLX's arrays only; the Metal runtime belongs to the process, outside the buffers the GPU wires",
        };
    }
    if !engine.uses_torch() {
        return Constant {
            name: GgmlBackend::context_name(ggml_backend.or(GgmlBackend::native(generation))),
            bytes: Bytes::from_mib(250),
            source: "gguf-parser default --platform-footprint 250 MiB VRAM for llama.cpp",
        };
    }
    let (mib, source) = match generation {
        // Measured: NVML per-process memory minus PyTorch's reserved pool, in a fresh process
        // after torch.cuda.init(), a first cuBLAS matmul and a first SDPA call (H200, driver
        // 580.159.04, torch 2.11.0+cu130; data/measurements/device/2026-11-27-h200/context.json).
        Generation::Hopper => {
            (684, "measured on H200, driver 580, torch 2.11 + cu130: NVML process memory − torch reserved")
        }
        // The context is the CUDA runtime, the cuBLAS handle and the kernel images loaded so
        // far, which differ little between generations; until a device record exists for them
        // the Hopper measurement stands in.
        Generation::Volta | Generation::Turing | Generation::Ampere | Generation::Ada | Generation::Blackwell => {
            (684, "Hopper measurement (H200, torch 2.11 + cu130); not yet measured on this generation")
        }
        Generation::Apple | Generation::Rdna | Generation::Other => (0, "not a CUDA device: runtime cost not modelled"),
    };
    Constant { name: "CUDA context (PyTorch)", bytes: Bytes::from_mib(mib), source }
}

/// vLLM's defaults for the profile run's batched tokens and the sampler warm-up's sequences, as
/// `vllm serve` sets them (`vllm/engine/arg_utils.py::_set_default_args`, the OpenAI server's
/// usage context): GPUs with at least 70 GiB, A100s excepted, get 8192 tokens and 1024
/// sequences, the others 2048 and 256. (The `LLM` class takes 16384 and 8192 tokens: pass
/// `--max-num-batched-tokens`.)
pub fn vllm_defaults(device: Option<&Device>) -> (u64, u64) {
    let large = device.is_none_or(|d| d.capacity.0 >= 70 * 1024 * MIB && !d.id.contains("a100"));
    if large {
        (8192, 1024)
    } else {
        (2048, 256)
    }
}

/// vLLM memory outside PyTorch's allocator (NCCL, cuBLAS handles), as vLLM's startup log
/// reports it: 0.13 GiB at TP 1, 0.55 GiB at TP 2 (llm-d H100 measurements, vLLM 0.11).
pub fn vllm_non_torch(tp: u32) -> Constant {
    let mib = if tp <= 1 { 133 } else { 563 };
    Constant {
        name: "vLLM non-torch memory (NCCL, cuBLAS)",
        bytes: Bytes::from_mib(mib),
        source: "llm-d vLLM empirical memory profiling, H100, vLLM 0.11: 0.13 GiB TP1, 0.55 GiB TP2",
    }
}

/// PyTorch's cuBLAS workspace for the default stream, allocated from its caching allocator (so
/// it counts in `max_memory_allocated`): measured 32 MiB left reserved after a bf16 matmul and
/// `empty_cache()` on an H200 (data/measurements/device/2026-11-27-h200/context.json), matching
/// PyTorch's default `CUBLAS_WORKSPACE_CONFIG=:4096:8` (8 × 4 MiB).
pub fn torch_cublas_workspace() -> Constant {
    Constant {
        name: "cuBLAS workspace",
        bytes: Bytes::from_mib(32),
        source: "measured on H200 (torch 2.11): 32 MiB = PyTorch default CUBLAS_WORKSPACE_CONFIG :4096:8",
    }
}
