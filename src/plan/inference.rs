//! The inference memory plan: weights, KV cache, activations, workspace and CUDA context per
//! GPU, for one engine and one GPU layout, and the verdict.

use super::activations::{prefill_peak, ActivationRequest};
use super::basis::BasisLog;
use super::device::{Device, Generation};
use super::engine::{self, Engine, EngineOptions, GgmlBackend, HostPlacement, LayerSet};
use super::kv::{self, KvRequest};
use super::mlx::PromptSchedule;
use super::vllm_moe;
use super::{GpuMemory, HostMemory, MemoryBreakdown, Plan, PlanError, Split, VllmReport};
use crate::model::spec::{Family, LayerAttention, ModelSpec};
use crate::model::tensors::{Role, TensorDesc};
use crate::quant::stored::QuantScheme;
use crate::quant::{KvFormat, WeightFormat};
use crate::units::Bytes;

/// Weight bytes by where they sit in the model, so they can be split across GPUs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightLayout {
    /// The embeddings: token table, learned position table and embedding norm (where a model
    /// has them), placed together on the first stage.
    pub embedding: Bytes,
    /// Of `embedding`, the token table alone: what a tied lm_head reads.
    pub token_table: Bytes,
    /// lm_head (when untied) and the final norm.
    pub output: Bytes,
    /// A multimodal checkpoint's vision encoder and projector: on the GPU that runs the first
    /// stage (with the embedding), divided like the layers under tensor parallelism.
    pub vision: Bytes,
    /// Each decoder layer's weights.
    pub layers: Vec<LayerWeights>,
    /// A multi-token-prediction drafter (`--mtp`): on the GPU with the output layer, not read by
    /// the model's own decode steps.
    pub drafter: Bytes,
    /// Of the layer weights, those of routed experts (all experts, all layers): MoE models read
    /// only the experts a token is routed to.
    pub routed_experts: Bytes,
    /// Elements of the largest decoder-layer matrix stored in fewer than 16 bits per weight (0
    /// when none is): engines that dequantize before a GEMM need a 16-bit scratch this large.
    pub largest_quantized_matrix: u64,
    /// Elements of lm_head when it is stored in fewer than 16 bits (LitGPT's bitsandbytes).
    pub quantized_output_matrix: u64,
}

/// One decoder layer's weight bytes, with the parts placements treat apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerWeights {
    /// Every tensor of the layer.
    pub total: Bytes,
    /// Its routed experts' (llama.cpp's `--n-cpu-moe` keeps them in host memory).
    pub experts: Bytes,
    /// Those every tensor-parallel rank holds whole (`Role::replicated_under_tensor_parallel`).
    pub replicated: Bytes,
    /// Its key and value projections: ranks beyond the KV head count hold copies of them
    /// (vLLM's `QKVParallelLinear` replicates KV heads when `tp > num_kv_heads`).
    pub kv_projections: Bytes,
}

impl WeightLayout {
    /// An empty layout for a model of `num_layers` decoder layers.
    pub fn new(num_layers: u64) -> Self {
        WeightLayout { layers: vec![LayerWeights::default(); num_layers as usize], ..Default::default() }
    }

    /// The weights of the decoder layers in `layers`.
    pub fn layers_in(&self, layers: std::ops::Range<u64>) -> Bytes {
        self.layers_of(layers).map(|l| l.total).sum()
    }

    /// The decoder layers in `layers` that the model has.
    fn layers_of(&self, layers: std::ops::Range<u64>) -> impl Iterator<Item = &LayerWeights> {
        layers.filter_map(|l| self.layers.get(l as usize))
    }

    /// Adds one tensor's bytes where it sits: its decoder layer, the embeddings, the vision
    /// tower, or the output (lm_head and final norm, and anything else outside the layers).
    pub fn place(&mut self, layer: Option<u32>, role: Option<Role>, bytes: Bytes) {
        let routed = role.is_some_and(Role::is_routed_expert);
        if routed {
            self.routed_experts += bytes;
        }
        if role == Some(Role::TokenEmbd) {
            self.token_table += bytes;
        }
        match (layer.map(|l| l as usize), role) {
            (Some(l), _) if l < self.layers.len() => {
                let layer = &mut self.layers[l];
                layer.total += bytes;
                if routed {
                    layer.experts += bytes;
                }
                match role {
                    Some(r) if r.replicated_under_tensor_parallel() => layer.replicated += bytes,
                    Some(Role::AttnK | Role::AttnV) => layer.kv_projections += bytes,
                    _ => {}
                }
            }
            (_, Some(r)) if r.is_embedding() => self.embedding += bytes,
            (_, Some(r)) if r.is_vision() => self.vision += bytes,
            _ => self.output += bytes,
        }
    }

    /// What one of `tp` tensor-parallel ranks holds of `spec`'s decoder layers in `layers`: an
    /// equal share of the sharded tensors, the replicated ones whole, and each layer's key and
    /// value projections of `max(1, kv_heads / tp)` heads (the layer kind's KV heads: Gemma 4's
    /// full layers have fewer). Kimi K2 Thinking at TP 8: 74,275,732,352 B a GPU as an eighth of
    /// everything, 76,182,604,032 B with its MLA down-projections, norms and routers
    /// (1,089,640,960 parameters) whole.
    pub fn tensor_parallel_share(&self, spec: &ModelSpec, layers: std::ops::Range<u64>, tp: u64) -> Bytes {
        let (mut sharded, mut whole, mut kv_share) = (Bytes::ZERO, Bytes::ZERO, Bytes::ZERO);
        for (l, layer) in layers.filter_map(|l| Some((l, self.layers.get(l as usize)?))) {
            let kind = spec.layer_attention.get(l as usize).copied().unwrap_or(LayerAttention::Full);
            sharded += layer.total.saturating_sub(layer.replicated).saturating_sub(layer.kv_projections);
            whole += layer.replicated;
            kv_share += Bytes(layer.kv_projections.0 / tp.min(spec.kv_shape(kind).0.max(1)));
        }
        Bytes(sharded.0 / tp) + whole + kv_share
    }

    /// Routed-expert bytes of the decoder layers in `layers`.
    pub fn experts_in(&self, layers: std::ops::Range<u64>) -> Bytes {
        self.layers_of(layers).map(|l| l.experts).sum()
    }

    /// Routed-expert bytes of the decoder layers in `layers`.
    pub fn experts_of(&self, layers: &LayerSet) -> Bytes {
        layers.ranges().iter().map(|r| self.experts_in(r.clone())).sum()
    }

    /// Sums `bytes_of` over an inventory, by position in the model.
    pub fn from_inventory(num_layers: u64, tensors: &[TensorDesc], bytes_of: impl Fn(&TensorDesc) -> Bytes) -> Self {
        let mut layout = WeightLayout::new(num_layers);
        for t in tensors {
            let b = bytes_of(t);
            layout.place(t.layer, Some(t.role), b);
            let matrix = t.rows * t.cols;
            if !t.is_vector() && b.0 < 2 * t.elements() {
                match (t.layer, t.role) {
                    (Some(_), _) => layout.largest_quantized_matrix = layout.largest_quantized_matrix.max(matrix),
                    (None, Role::Output) => layout.quantized_output_matrix = matrix,
                    _ => {}
                }
            }
        }
        layout
    }

    pub fn total(&self) -> Bytes {
        self.language_model() + self.vision + self.drafter
    }

    /// Every weight but the vision encoder and projector: what a text prompt reads.
    pub fn language_model(&self) -> Bytes {
        self.embedding + self.output + self.layers.iter().map(|l| l.total).sum()
    }
}

/// Everything an inference plan depends on.
#[derive(Clone, Debug)]
pub struct InferenceRequest<'a> {
    pub spec: &'a ModelSpec,
    pub weights: &'a WeightLayout,
    /// The format `weights` was laid out in.
    pub format: WeightFormat,
    pub kv: KvFormat,
    pub context: u64,
    pub batch: u64,
    pub engine: Engine,
    pub options: EngineOptions,
    pub device: Option<Device>,
    /// How several GPUs share the model; `None` picks the engine's usual split.
    pub split: Option<Split>,
}

impl InferenceRequest<'_> {
    /// The format the KV cache holds at the end of the context. mlx-lm converts each layer's
    /// 16-bit cache to `--kv-bits` codes (`maybe_quantize_kv_cache`, after every prompt chunk and
    /// decode step) once it holds `--quantized-kv-start` tokens, so a shorter context keeps the
    /// 16-bit cache throughout.
    pub fn cache_format(&self) -> KvFormat {
        match self.kv.mlx_bits() {
            Some(_) if self.context < self.options.quantized_kv_start => KvFormat::Bf16,
            _ => self.kv,
        }
    }

    /// With an mlx-lm quantized cache: the tokens the 16-bit cache holds when it is converted,
    /// the end of the first prompt chunk at or past `--quantized-kv-start`. Qwen3-4B at 32,768
    /// tokens, defaults: the third 2,048-token chunk ends at 6,144 ≥ 5,000.
    pub fn mlx_conversion_tokens(&self) -> Option<u64> {
        self.cache_format().mlx_bits()?;
        Some(self.mlx_schedule().first_end_from(self.options.quantized_kv_start))
    }

    /// The prompt chunks mlx-lm prefills in (one prompt; batches take BatchGenerator's passes).
    pub fn mlx_schedule(&self) -> PromptSchedule {
        PromptSchedule::new(self.context, self.options.prefill_step_size)
    }

    /// Where prompt tokens after the conversion attend through mlx-lm's
    /// `quantized_scaled_dot_product_attention`, which writes every score (there is no fused
    /// kernel for a quantized cache): the conversion point, when some chunk follows it.
    pub fn mlx_quantized_from(&self) -> Option<u64> {
        self.mlx_conversion_tokens().filter(|&at| at < self.context)
    }
}

/// Whether llama.cpp's CUDA (or HIP) flash attention converts a quantized cache to f16 for its
/// prompt kernels (fattn-mma-f16 and fattn-tile read f16 keys and values): a q8_0 or q4_0 cache
/// with flash attention on, in a CUDA or HIP build, which is every build but Metal and Vulkan
/// ones; an AMD GPU without `--backend` is planned as a HIP build would hold it. The copy
/// holds one layer's whole cache and is allocated with the attention op: Llama-3-8B's CUDA
/// compute buffer with a q8_0 cache is 192.09, 352.09 and 672.09 MiB at 32,768, 65,536 and
/// 131,072 cells where an f16 cache's is 140.01, 172.01 and 236.01 (llama.cpp master 36b101543,
/// RTX 3090, ubatch 512; Abai/llama.cpp PR-BODY-fattn-dequant-cap.md, which caps it).
fn converts_cache_to_f16(req: &InferenceRequest) -> bool {
    let cuda = match req.options.ggml_backend {
        Some(backend) => matches!(backend, GgmlBackend::Cuda | GgmlBackend::Hip),
        None => req.device.as_ref().is_none_or(|d| d.generation != Generation::Apple),
    };
    cuda && req.engine == Engine::LlamaCpp
        && req.options.flash_attention
        && matches!(req.kv, KvFormat::Q8_0 | KvFormat::Q4_0)
}

/// Plans inference memory on every GPU of the request's device.
pub fn plan_inference(req: &InferenceRequest) -> Result<Plan, PlanError> {
    validate(req)?;
    let spec = req.spec;
    let mut basis = BasisLog::default();
    let count = req.device.as_ref().map_or(1, |d| d.count as u64);
    let split = req.split.unwrap_or(if req.engine == Engine::Vllm { Split::Tensor } else { Split::Layer });
    // llama.cpp's row split (-sm row) divides only the matrices: planned on one GPU, then shared.
    let row_split = split == Split::Tensor && req.engine == Engine::LlamaCpp && count > 1;
    let tp = if split == Split::Tensor && !row_split { count } else { 1 };
    if !spec.splits_heads(tp) {
        return Err(PlanError::TensorParallelHeads { tp, heads: spec.num_heads, kv_heads: spec.num_kv_heads });
    }
    let (max_batched_tokens, max_num_seqs) = vllm_budget(req);
    // vLLM's multi-token-prediction drafter adds its attention layers to the KV cache.
    let drafter = (req.options.mtp_tokens > 0).then(|| spec.with_mtp_layers(spec.mtp_layers));
    let kv = KvRequest {
        spec: drafter.as_ref().unwrap_or(spec),
        format: req.cache_format(),
        context: req.context,
        batch: req.batch,
        engine: req.engine,
        options: &req.options,
        tp,
        max_batched_tokens,
    };
    kv::explain(&kv, &mut basis);
    if let Some(bits) = req.kv.mlx_bits() {
        basis.add(
            "mlx-lm quantized cache",
            match req.mlx_conversion_tokens() {
                Some(at) => format!(
                    "{bits}-bit codes with a 16-bit scale and bias per 64 elements, converted at {at} tokens (the first prompt chunk end at or past --quantized-kv-start {})",
                    req.options.quantized_kv_start
                ),
                None => format!("16-bit throughout: {} tokens never reach --quantized-kv-start {}", req.context, req.options.quantized_kv_start),
            },
            "mlx-lm QuantizedKVCache (mx.quantize along head_dim, group 64); prompt chunks after the conversion attend through quantized_scaled_dot_product_attention, which writes every 16-bit score",
        );
    }
    if req.options.mtp_tokens > 0 {
        basis.add(
            "multi-token-prediction drafter",
            format!("{} layer(s), {} draft tokens per step", spec.mtp_layers, req.options.mtp_tokens),
            "vLLM speculative decoding (method mtp): the drafter's fc, layers and norms with the output layer, its attention layers' KV beside the model's, one more state page and conv column per draft token in each recurrent layer; speeds are the model's without speculation (acceptance is not modelled)",
        );
    }
    basis.add(
        "weights (whole model)",
        req.weights.total().0,
        "sum of exact tensor bytes in the weight format, on the GPUs and any kept in host RAM",
    );
    if req.weights.vision > Bytes::ZERO {
        basis.add(
            if spec.audio.is_some() { "vision and audio towers + projectors (16-bit)" } else { "vision tower + projector (16-bit)" },
            req.weights.vision.0,
            match spec.vision.map(|v| v.kind) {
                Some(crate::model::vision::VisionKind::QwenVit) => "Qwen ViT + patch merger in 16-bit under every format (quantizers and llama.cpp's mmproj leave them so); on the first GPU, divided under tensor parallel; image-encoding activations not modelled",
                Some(crate::model::vision::VisionKind::Gemma4) if spec.audio.is_some() => "Gemma 4 vision and audio encoders + their projectors in 16-bit under every format (quantizers leave them so; llama.cpp's mmproj holds both); on the first GPU, divided under tensor parallel; encoding activations not modelled",
                Some(crate::model::vision::VisionKind::Gemma4) => "Gemma 4 vision encoder + projector in 16-bit under every format (quantizers and llama.cpp's mmproj leave them so); on the first GPU, divided under tensor parallel; image-encoding activations not modelled",
                Some(crate::model::vision::VisionKind::MoonVit) => "MoonViT + patch-merger projector in 16-bit under every format (Kimi K2.5's compressed-tensors ignore list keeps vision_tower and mm_projector so); on the first GPU, divided under tensor parallel; image-encoding activations not modelled",
                Some(crate::model::vision::VisionKind::Llama4) => "Llama 4 vision encoder + pixel-shuffle adapter + projector in 16-bit under every format (quantizers and llama.cpp's mmproj leave them so); on the first GPU, divided under tensor parallel; image-encoding activations not modelled",
                _ => "SigLIP encoder + projector in 16-bit under every format (quantizers and llama.cpp's mmproj leave them so); on the first GPU, divided under tensor parallel; image-encoding activations not modelled",
            },
        );
    }

    let host = req.options.host_placement(spec.num_layers);
    // Tensor parallel: every GPU holds the same share, so one is computed and repeated.
    // llama.cpp splits its units (layers, then the output layer) itself, or as -ts gives them.
    let units = host.units(spec.num_layers);
    let runs = match &req.options.layer_split {
        _ if split == Split::Tensor => None,
        Some(runs) => Some(runs.clone()),
        None if req.engine == Engine::LlamaCpp && count > 1 => {
            Some(engine::llama_cpp_runs(units, &vec![1.0; count as usize]))
        }
        None => None,
    };
    let stages = match &runs {
        _ if split == Split::Tensor => 1,
        Some(runs) => runs.len() as u64,
        None => count.min(spec.num_layers - host.gpu_start).max(1),
    };
    let moe_load_extra = vllm_moe_load_extra(req, tp, &mut basis);
    let layout = Layout { kv, tp, stages, runs, max_num_seqs, host, moe_load_extra };
    let mut per_gpu: Vec<GpuMemory> = Vec::with_capacity(count as usize);
    for stage in 0..stages {
        let mut scratch = BasisLog::default();
        per_gpu.push(stage_memory(req, &layout, stage, if stage == 0 { &mut basis } else { &mut scratch }));
    }
    if tp > 1 {
        basis.add(
            "tensor parallel",
            tp,
            "weights, KV heads and MLP features divided among GPUs; norms, MLA down-projections, MoE routers and DeepSeek-V3.2's indexer whole on each, KV projections shared by tp / kv_heads ranks when tp exceeds them (vLLM's ReplicatedLinear and QKVParallelLinear)",
        );
        per_gpu = (0..tp as u32).map(|i| GpuMemory { gpu_index: i, ..per_gpu[0].clone() }).collect();
    } else if stages > 1 {
        let runs = match &layout.runs {
            Some(runs) => format!(
                " in runs of {} (llama.cpp's units: by -ts or free memory, the output layer last)",
                runs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        };
        basis.add(
            "layer split",
            format!("{} layers over {stages} GPUs{runs}", spec.num_layers),
            if layout.runs.is_some() {
                "consecutive units per GPU (decoder layers, then the output layer with the GPU that holds the last unit); llama.cpp keeps the token embedding in host RAM"
            } else {
                "consecutive layers per GPU; embeddings on the first, lm_head on the last"
            },
        );
    }
    if row_split {
        per_gpu = row_split_gpus(req, &layout, per_gpu.swap_remove(0), count, &mut basis);
    }
    // The first GPU's compute buffer holds llama.cpp's copies of host weights for batched
    // matmuls: never live with the logits, so the buffer grows only where a copy is larger than
    // the activation peak.
    let copy = host_weight_copy(req, &layout, &mut basis);
    if let Some(first) = per_gpu.first_mut() {
        first.memory.workspace += copy.saturating_sub(first.memory.activations);
        first.memory.retotal();
    }
    let offloaded = per_gpu.iter().map(|g| vllm_offload(req, g.layers.0..g.layers.1, layout.tp).bytes).sum();
    let host = host_memory(req, &layout, offloaded, &mut basis);
    let busiest = per_gpu.iter().max_by_key(|g| g.memory.total).map(|g| g.memory.clone()).unwrap_or_default();
    let mut plan = Plan { memory: busiest, per_gpu, fit: None, vllm: None, host, basis: basis.0 };
    if let Some(device) = &req.device {
        fit(req, device, &layout, &mut plan);
    }
    Ok(plan)
}

/// How the model is laid over the GPUs.
struct Layout<'a> {
    kv: KvRequest<'a>,
    /// Tensor-parallel degree (1 with a layer split).
    tp: u64,
    /// Pipeline stages of a layer split (1 with tensor parallelism).
    stages: u64,
    /// llama.cpp's units (decoder layers on the GPUs, then the output layer) per GPU; `None`:
    /// even runs of the layers, the output layer on the last.
    runs: Option<Vec<u64>>,
    /// What llama.cpp's --n-gpu-layers and --n-cpu-moe leave in host RAM.
    host: HostPlacement,
    max_num_seqs: u64,
    /// Bytes an MoE layer holds on a GPU beyond its share of the checkpoint once the engine has
    /// loaded it (vLLM's MXFP4 backends).
    moe_load_extra: Bytes,
}

/// The decoder layers of pipeline stage `stage`, and whether it runs the output layer: even
/// runs of the layers on the GPUs, the output layer on the last, or llama.cpp's layer split
/// (runs of units, the output layer the last unit when it is on the GPUs).
fn stage_layers(req: &InferenceRequest, layout: &Layout, stage: u64) -> (std::ops::Range<u64>, bool) {
    let (start, stages, num_layers) = (layout.host.gpu_start, layout.stages, req.spec.num_layers);
    match &layout.runs {
        Some(runs) => {
            let from = start + runs[..stage as usize].iter().sum::<u64>();
            let to = from + runs[stage as usize];
            (from.min(num_layers)..to.min(num_layers), layout.host.output_on_gpu && (from..to).contains(&num_layers))
        }
        _ => {
            let on_gpu = num_layers - start;
            let layers = (start + stage * on_gpu / stages)..(start + (stage + 1) * on_gpu / stages);
            (layers, stage == stages - 1 && layout.host.output_on_gpu)
        }
    }
}

/// Memory of the GPU that runs pipeline stage `stage`.
fn stage_memory(req: &InferenceRequest, layout: &Layout, stage: u64, log: &mut BasisLog) -> GpuMemory {
    let spec = req.spec;
    let (layers, last) = stage_layers(req, layout, stage);
    let first = stage == 0 && layout.host.gpu_start == 0;
    // --n-cpu-moe (or --fit): the routed experts of these layers stay on the host.
    let experts_on_host = req.weights.experts_of(&layout.host.cpu_moe.within(layers.clone()));
    // What the GPU holds outside its decoder layers.
    let mut outside_layers = Bytes::ZERO;
    if first && !req.engine.embeddings_on_host() {
        outside_layers += req.weights.embedding;
    }
    // llama.cpp offloads its mmproj to the GPU whatever --n-gpu-layers says (mtmd's default).
    if stage == 0 {
        outside_layers += req.weights.vision;
    }
    if last {
        outside_layers += req.weights.output + req.weights.drafter;
    }
    let act = ActivationRequest {
        spec,
        engine: req.engine,
        options: &req.options,
        context: req.context,
        batch: req.batch,
        tp: layout.tp,
        has_layers: !layers.is_empty(),
        has_output: last,
        max_batched_tokens: layout.kv.max_batched_tokens,
        max_num_seqs: layout.max_num_seqs,
        mlx_quantized_from: req.mlx_quantized_from(),
        f16_cache_copy: if converts_cache_to_f16(req) { kv::largest_layer_f16_bytes(&layout.kv) } else { Bytes::ZERO },
    };
    let mut activations = prefill_peak(&act, log).bytes;
    // The last stage also caches for the drafter's layers, which follow the model's.
    let kv_layers = if last { layers.start..layers.end.max(layout.kv.spec.num_layers) } else { layers.clone() };
    let kv_cache = kv::kv_bytes(&layout.kv, kv_layers.clone());
    if let Some(at) = req.mlx_conversion_tokens() {
        // The moment mlx-lm converts: the 16-bit cache of `at` tokens and that chunk's fused
        // attention. Counted as a transient above the final cache when it is the higher.
        let bf16 = KvRequest { format: KvFormat::Bf16, context: at, ..layout.kv };
        let chunk = ActivationRequest { context: at, mlx_quantized_from: None, ..act };
        let moment = kv::kv_bytes(&bf16, kv_layers) + prefill_peak(&chunk, &mut BasisLog::default()).bytes;
        let peak = moment > kv_cache + activations;
        log.add(
            "16-bit cache when mlx-lm quantizes it",
            format!(
                "{at} tokens: {:.2} GiB with that chunk's activations, {} the final cache and last chunk ({:.2} GiB)",
                moment.gib(),
                if peak { "the peak: above" } else { "below" },
                (kv_cache + activations).gib()
            ),
            "maybe_quantize_kv_cache converts each layer's KVCache after the prompt chunk that reaches --quantized-kv-start (mlx_lm.generate: 5,000) tokens; until then the cache is 16-bit",
        );
        activations = activations.max(moment.saturating_sub(kv_cache));
    }
    let workspace = workspace(req, layout.tp, &act, log);
    let generation = req.device.as_ref().map_or(Generation::Hopper, |d| d.generation);
    let context = engine::cuda_context(req.engine, generation, req.options.ggml_backend);
    log.add(context.name, context.bytes.0, context.source);
    let moe_layers = layers.clone().filter(|&l| spec.is_moe_layer(l)).count() as u64;
    let offloaded = vllm_offload(req, layers.clone(), layout.tp).bytes;
    // The decoder layers as each tensor-parallel rank holds them (the routed experts kept on the
    // host divided like every expert), the rest divided evenly.
    let tp = layout.tp;
    let layer_share = req.weights.tensor_parallel_share(spec, layers.clone(), tp);
    let weights = Bytes(outside_layers.0 / tp) + layer_share.saturating_sub(Bytes(experts_on_host.0 / tp));
    let weights = weights + Bytes(layout.moe_load_extra.0 * moe_layers) - offloaded;
    let memory = MemoryBreakdown::inference(weights, kv_cache, activations, workspace, context.bytes);
    GpuMemory { gpu_index: stage as u32, layers: (layers.start, layers.end), memory }
}

/// llama.cpp's row split (`-sm row`) over `count` equal GPUs: the decoder layers' and the output
/// layer's 2-D matrices are divided by rows among the GPUs; the routed-expert tensors (which
/// `MUL_MAT_ID` cannot split), the KV cache and the intermediate results stay on the main GPU
/// (llama.cpp's `--main-gpu`: "for intermediate results and KV with split-mode = row"). `whole`
/// is the plan of the model on the main GPU alone. Llama-2-70B Q4_K_M at 16,384 tokens on two
/// GPUs: 19.2 GiB of matrices each, and the 5 GiB KV cache on the first.
fn row_split_gpus(
    req: &InferenceRequest,
    layout: &Layout,
    whole: GpuMemory,
    count: u64,
    basis: &mut BasisLog,
) -> Vec<GpuMemory> {
    let w = req.weights;
    let on_gpu = layout.host.gpu_start..req.spec.num_layers;
    let layers = w.layers_in(on_gpu.clone());
    let output = if layout.host.output_on_gpu { w.output } else { Bytes::ZERO };
    // Norms and biases (a few MB, which stay on the main GPU) are shared with the matrices here.
    let matrices = layers.saturating_sub(w.experts_in(on_gpu)) + output;
    let share = Bytes(matrices.0 / count);
    basis.add(
        "llama.cpp row split",
        format!("{} B of matrices per GPU", share.0),
        "-sm row: layer and output matrices divided by rows; norms, expert tensors, the KV cache and intermediate results on the main GPU",
    );
    let context = whole.memory.cuda_context;
    let mut main = whole.clone();
    let moved = Bytes(share.0 * (count - 1));
    main.memory.weights = main.memory.weights.saturating_sub(moved);
    main.memory.retotal();
    let others = (1..count as u32).map(|i| GpuMemory {
        gpu_index: i,
        memory: MemoryBreakdown::inference(share, Bytes::ZERO, Bytes::ZERO, Bytes::ZERO, context),
        ..whole.clone()
    });
    std::iter::once(main).chain(others).collect()
}

fn is_mxfp4(format: WeightFormat) -> bool {
    format == WeightFormat::Quantized(QuantScheme::Mxfp4)
}

/// What vLLM's MXFP4 backend adds to each MoE layer on one GPU as it loads the experts
/// (`vllm_moe`); zero for other engines and formats. Without a device the plan assumes Hopper,
/// as elsewhere: the Triton backend.
fn vllm_moe_load_extra(req: &InferenceRequest, tp: u64, basis: &mut BasisLog) -> Bytes {
    if req.engine != Engine::Vllm || !is_mxfp4(req.format) || req.spec.moe.is_none() {
        return Bytes::ZERO;
    }
    let backend = match &req.device {
        None => Some(vllm_moe::Mxfp4Backend::Triton),
        Some(d) => vllm_moe::Mxfp4Backend::for_device(d),
    };
    let Some(backend) = backend else {
        if req.device.as_ref().is_some_and(|d| matches!(d.generation, Generation::Rdna | Generation::Other)) {
            basis.add(
                "vLLM MXFP4 experts as loaded",
                "as stored",
                "ROCm's and other platforms' MXFP4 MoE padding is not modelled: the checkpoint's bytes are planned",
            );
        }
        return Bytes::ZERO;
    };
    let extra = vllm_moe::extra_per_layer(req.spec, backend, tp);
    basis.add(
        "vLLM MXFP4 experts as loaded (per MoE layer, per GPU)",
        format!("+{} B, {} backend{}", extra.0, backend.name(), if req.device.is_none() { " (no GPU given: Hopper's)" } else { "" }),
        "Mxfp4MoEMethod: the backend's padding of the intermediate and hidden sizes, fp32 biases (Triton, FlashInfer), and Triton's swizzled scale copy (rows padded to 256) beside the loaded scales",
    );
    extra
}

/// What one GPU keeps in host memory under vLLM's `--cpu-offload-gb`.
#[derive(Clone, Debug, PartialEq)]
pub struct VllmOffload {
    /// Bytes of this GPU's share (1/tp of each layer) moved to pinned host memory.
    pub bytes: Bytes,
    /// The decoder layers moved whole.
    pub whole: std::ops::Range<u64>,
    /// Of the layer after them, the fraction moved.
    pub partial: f64,
}

/// vLLM `--cpu-offload-gb` on the GPU holding decoder layers `layers` at tensor-parallel degree
/// `tp`: `make_layers` wraps each layer in `maybe_offload_to_cpu`, which moves parameters in
/// order to pinned CPU memory until the GPU's budget is spent (checked before each parameter, so
/// up to one parameter more; planned as the budget exactly). Embeddings and lm_head stay.
/// Llama-2-13B bf16 (605 MiB a layer) with 8 GiB: 13 whole layers and 0.54 of the 14th.
pub fn vllm_offload(req: &InferenceRequest, layers: std::ops::Range<u64>, tp: u64) -> VllmOffload {
    let mut left = if req.engine == Engine::Vllm { req.options.cpu_offload_bytes } else { 0 };
    let mut offload = VllmOffload { bytes: Bytes::ZERO, whole: layers.start..layers.start, partial: 0.0 };
    for l in layers {
        // Each rank offloads its own parameters of the layer, those it holds whole included.
        let share = req.weights.tensor_parallel_share(req.spec, l..l + 1, tp.max(1)).0;
        if left == 0 || share == 0 {
            break;
        }
        let taken = share.min(left);
        offload.bytes += Bytes(taken);
        left -= taken;
        if taken == share {
            offload.whole.end = l + 1;
        } else {
            offload.partial = taken as f64 / share as f64;
        }
    }
    offload
}

/// llama.cpp's copy of host-resident weights on the first GPU: for a ubatch of 32 tokens or
/// more the CUDA backend runs matmuls on host weights itself (op offload, on by default), the
/// scheduler copying their tensors into the GPU's compute buffer one split at a time. The
/// buffer is reserved for the largest split: a layer's `ffn_*_exps` under `--n-cpu-moe`, a whole
/// layer left on the host by `--n-gpu-layers` (its attention and MLP matrices; an upper bound),
/// or the output layer left there.
fn host_weight_copy(req: &InferenceRequest, layout: &Layout, log: &mut BasisLog) -> Bytes {
    let w = req.weights;
    // llama.cpp only (vLLM's chunk does not apply).
    let reserve_tokens = req.options.prompt_pass_tokens(req.engine, req.context, req.batch, 0);
    if req.engine != Engine::LlamaCpp || reserve_tokens < engine::OP_OFFLOAD_MIN_TOKENS {
        return Bytes::ZERO;
    }
    let host_layers = (0..layout.host.gpu_start).map(|l| w.layers_in(l..l + 1));
    let expert_layers = layout.host.expert_layers();
    let layer_experts = expert_layers.iter().map(|l| w.experts_in(l..l + 1));
    let output = (!layout.host.output_on_gpu).then_some(w.output);
    let copy = host_layers.chain(layer_experts).chain(output).max().unwrap_or_default();
    if copy > Bytes::ZERO {
        log.add(
            "host weights copied for the GPU (op offload)",
            copy.0,
            "llama.cpp: matmuls of 32+ tokens on host weights run on the first GPU, which holds a copy of the largest split's weights in its compute buffer (a layer's experts under --n-cpu-moe, a host layer under --n-gpu-layers, the output layer); the buffer is the larger of this and the activation peak; --op-offload off or --ubatch below 32 avoids it",
        );
    }
    copy
}

/// What the host holds: embeddings kept there by the engine, and with llama.cpp's
/// --n-gpu-layers the layers (and their KV cache) and output layer left on the CPU, with
/// --n-cpu-moe the first layers' routed experts.
fn host_memory(
    req: &InferenceRequest,
    layout: &Layout,
    vllm_offloaded: Bytes,
    basis: &mut BasisLog,
) -> Option<HostMemory> {
    let on_host = 0..layout.host.gpu_start;
    let mut weights = req.weights.layers_in(on_host.clone());
    if vllm_offloaded > Bytes::ZERO {
        weights += vllm_offloaded;
        basis.add(
            "weights offloaded to host memory (all GPUs)",
            vllm_offloaded.0,
            "vLLM --cpu-offload-gb: each GPU moves its first decoder layers' parameters, in order, to pinned host memory until the budget is spent (up to one parameter more); its kernels read them over PCIe (UVA) in every forward pass",
        );
    }
    let expert_layers = layout.host.expert_layers();
    let experts = req.weights.experts_of(&expert_layers);
    weights += experts;
    if experts > Bytes::ZERO {
        basis.add(
            "routed experts in host RAM",
            format!("{} B, layers {expert_layers}", experts.0),
            "llama.cpp --n-cpu-moe N / --cpu-moe (or --fit): the ffn_*_exps tensors of the first N layers (--fit: the back layers of each GPU's run) in a CPU buffer (mmapped from the file) besides layers --n-gpu-layers leaves there; attention, shared experts, routers and the KV cache stay on the GPUs. With layers alike, --n-cpu-moe 1 frees nothing: the first GPU holds a copy of one layer's experts",
        );
    }
    if req.engine.embeddings_on_host() {
        weights += req.weights.embedding;
    }
    if !layout.host.output_on_gpu {
        weights += req.weights.output;
    }
    let kv_cache = kv::kv_bytes(&layout.kv, on_host);
    if weights.0 == 0 {
        return None;
    }
    if layout.host.gpu_start > 0 {
        basis.add(
            "layers on the host",
            format!("{} of {} (--n-gpu-layers {})", layout.host.gpu_start, req.spec.num_layers, req.options.gpu_layers.unwrap_or_default()),
            if req.options.ngl_output_last {
                "llama.cpp before December 2025 offloads the last n decoder layers (i_gpu_start = n_layer − n_gpu_layers), the output layer only above the layer count; the rest and their KV stay in RAM"
            } else {
                "llama.cpp offloads n units from the back, the output layer first (i_gpu_start = n_layer + 1 − n_gpu_layers, PR #18148); the rest and their KV stay in RAM"
            },
        );
    }
    Some(HostMemory { weights_bytes: weights.0, kv_cache_bytes: kv_cache.0, total_bytes: (weights + kv_cache).0 })
}

fn validate(req: &InferenceRequest) -> Result<(), PlanError> {
    if req.options.gpu_layers.is_some() && req.engine != Engine::LlamaCpp {
        return Err(PlanError::BadNumber {
            what: "n-gpu-layers",
            value: req.options.gpu_layers.unwrap_or_default().to_string(),
            fix: "partial offload is modelled for --engine llama.cpp only",
        });
    }
    if let Some(backend) = req.options.ggml_backend {
        let refusal = if req.engine != Engine::LlamaCpp {
            Some("the ggml backend is llama.cpp's: add --engine llama.cpp, or drop --backend")
        } else {
            req.device.as_ref().and_then(|d| backend.refused_on(d.generation))
        };
        if let Some(fix) = refusal {
            return Err(PlanError::Unsupported { what: "backend", value: backend.id().into(), fix });
        }
    }
    if let Some(runs) = &req.options.layer_split {
        let host = req.options.host_placement(req.spec.num_layers);
        let units = host.units(req.spec.num_layers);
        let gpus = req.device.as_ref().map_or(1, |d| d.count as usize);
        if req.engine != Engine::LlamaCpp || runs.len() != gpus || runs.iter().sum::<u64>() != units {
            return Err(PlanError::BadNumber {
                what: "n-gpu-layers",
                value: format!("{runs:?}"),
                fix: "a llama.cpp layer split (as --fit writes it) gives each GPU one run of the units on the GPUs, the output layer counted last, covering them all",
            });
        }
    }
    if req.engine == Engine::LlamaCpp && req.options.n_ubatch == 0 {
        return Err(PlanError::BadNumber { what: "ubatch", value: "0".into(), fix: "give at least 1 token" });
    }
    if !req.options.cpu_moe.is_empty() {
        if req.engine != Engine::LlamaCpp {
            return Err(PlanError::BadNumber {
                what: "n-cpu-moe",
                value: req.options.cpu_moe.len().to_string(),
                fix: "experts in host RAM are modelled for --engine llama.cpp only",
            });
        }
        if req.spec.moe.is_none() {
            return Err(PlanError::BadNumber {
                what: "n-cpu-moe",
                value: req.options.cpu_moe.len().to_string(),
                fix: "the model has no routed experts to keep in host RAM; use --n-gpu-layers",
            });
        }
    }
    if req.context == 0 {
        return Err(PlanError::BadNumber { what: "context", value: "0".into(), fix: "give at least 1 token" });
    }
    if req.batch == 0 {
        return Err(PlanError::BadNumber { what: "batch", value: "0".into(), fix: "give at least 1 sequence" });
    }
    if req.context > 1 << 24 {
        return Err(PlanError::BadNumber {
            what: "context",
            value: req.context.to_string(),
            fix: "give at most 16,777,216 tokens",
        });
    }
    if req.batch > 1 << 20 {
        return Err(PlanError::BadNumber {
            what: "batch",
            value: req.batch.to_string(),
            fix: "give at most 1,048,576 sequences",
        });
    }
    if !super::limits::workload_fits_arithmetic(req.spec, req.batch, req.context) {
        return Err(PlanError::BadNumber {
            what: "batch × context",
            value: format!("{} × {}", req.batch, req.context),
            fix: "this workload's buffers exceed 1 EiB; reduce --batch or --context",
        });
    }
    if req.engine == Engine::Mlx && req.options.prefill_step_size == 0 {
        return Err(PlanError::BadNumber {
            what: "prefill-step-size",
            value: "0".into(),
            fix: "give at least 1 token",
        });
    }
    req.engine.stores_kv(req.kv).map_err(|fix| PlanError::Unsupported {
        what: "kv-cache",
        value: req.kv.id().into(),
        fix,
    })?;
    if req.kv.mlx_bits().is_some() {
        mlx_quantized_cache_runs(req)?;
    }
    let u = req.options.gpu_memory_utilization;
    if !(u > 0.0 && u <= 1.0) {
        return Err(PlanError::BadNumber {
            what: "gpu-memory-utilization",
            value: u.to_string(),
            fix: "give a fraction in (0, 1]",
        });
    }
    Ok(())
}

/// Whether mlx-lm (the only engine `stores_kv` lets hold these formats) can quantize this
/// model's cache (`--kv-bits`, which `mlx_lm.generate` and `stream_generate` take;
/// `mlx_lm.server` has no such flag). Only a plain `KVCache` converts (`to_quantized`):
/// `RotatingKVCache` raises NotImplementedError, batched generation's `BatchKVCache` has no
/// conversion, Gemma 2's attention (written out for its logit soft-cap) multiplies the cache
/// directly and cannot take quantized tuples, and `mx.quantize` groups 64 elements within a
/// head.
fn mlx_quantized_cache_runs(req: &InferenceRequest) -> Result<(), PlanError> {
    let unsupported = |fix: &'static str| PlanError::Unsupported { what: "kv-cache", value: req.kv.id().into(), fix };
    let spec = req.spec;
    if req.batch > 1 {
        return Err(unsupported(
            "mlx-lm's batched generation (BatchKVCache) never quantizes its cache: plan --batch 1 or --kv-cache bf16",
        ));
    }
    if spec.mla.is_some() {
        return Err(unsupported(
            "mlx-lm's quantized cache is not modelled for multi-head latent attention: use --kv-cache bf16",
        ));
    }
    if spec.family == Family::Gemma2 {
        return Err(unsupported(
            "mlx-lm's Gemma 2 attention (soft-capped scores written out) cannot read a quantized cache: use --kv-cache bf16",
        ));
    }
    if spec.family == Family::Llama4 {
        return Err(unsupported(
            "mlx-lm keeps Llama 4's chunked-attention layers in a ChunkedKVCache, which headroom does not plan quantized: use --kv-cache bf16",
        ));
    }
    if kv::mlx_slides(spec.family) && spec.layer_attention.iter().any(|a| a.token_cap().is_some()) {
        return Err(unsupported(
            "mlx-lm cannot quantize this model's RotatingKVCache (sliding-window layers): use --kv-cache bf16",
        ));
    }
    if spec.head_dim % crate::quant::kv::MLX_KV_GROUP != 0 {
        return Err(unsupported(
            "mx.quantize needs head_dim to be a multiple of the 64-element group: use --kv-cache bf16",
        ));
    }
    Ok(())
}

/// vLLM's profile-run token budget and sampler warm-up batch for the request's GPU.
pub(crate) fn vllm_budget(req: &InferenceRequest) -> (u64, u64) {
    let (tokens, seqs) = engine::vllm_defaults(req.device.as_ref());
    (req.options.max_num_batched_tokens.unwrap_or(tokens), req.options.max_num_seqs.unwrap_or(seqs))
}

/// Engine buffers that persist besides weights and KV.
fn workspace(req: &InferenceRequest, tp: u64, act: &ActivationRequest, log: &mut BasisLog) -> Bytes {
    let mut total = Bytes::ZERO;
    if req.engine.uses_torch() {
        let c = engine::torch_cublas_workspace();
        log.add(c.name, c.bytes.0, c.source);
        total += c.bytes;
    }
    if req.engine == Engine::Headroom {
        total += headroom_workspace(req, log);
    }
    let per_weight = req.engine.dequantized_bytes_per_weight(req.format);
    let w = req.weights;
    let largest =
        (act.has_layers as u64 * w.largest_quantized_matrix).max(act.has_output as u64 * w.quantized_output_matrix);
    let dequantized = largest / tp * per_weight;
    if dequantized > 0 {
        // Live during the prompt's GEMM on that matrix, beside that moment's activations.
        log.add(
            "dequantized weight (prompt GEMMs)",
            dequantized,
            format!(
                "largest quantized matrix × {} B: bitsandbytes dequantize_4bit{} / GPTQ-AWQ dequantization before the GEMM",
                per_weight,
                if per_weight > 2 { " in fp16, then .to(bf16)" } else { "" }
            ),
        );
        total += Bytes(dequantized);
    }
    if req.engine == Engine::Exllama {
        // ExLlama reconstructs fp16 weights for prompt passes into one scratch buffer sized for
        // the largest quantized matrix (`temp_dq`, max over layers of qweight elements × 8).
        let temp_dq = Bytes(req.spec.largest_layer_matrix() / tp * 2);
        log.add("ExLlama dequantization scratch (temp_dq)", temp_dq.0, "largest layer matrix in fp16");
        total += temp_dq;
    }
    if req.engine == Engine::Vllm {
        let c = engine::vllm_non_torch(tp as u32);
        log.add(c.name, c.bytes.0, c.source);
        total += c.bytes;
        if req.options.enforce_eager {
            log.add("vLLM CUDA graph pool", 0, "--enforce-eager: no graphs are captured");
            return total;
        }
        // CUDA graphs are captured for decode batches up to min(max_num_seqs, 512) tokens (each
        // sequence with its draft tokens under speculative decoding); their private pool holds
        // the activations of the largest captured batch.
        let graph_tokens = (act.max_num_seqs * (1 + req.options.mtp_tokens)).min(512);
        let graph_req =
            ActivationRequest { context: 1, batch: graph_tokens, engine: Engine::Bare, has_output: false, ..*act };
        let graphs = prefill_peak(&graph_req, &mut BasisLog::default()).bytes;
        log.add(
            "vLLM CUDA graph pool",
            graphs.0,
            format!("activations of a {graph_tokens}-token decode batch (largest captured graph)"),
        );
        total += graphs;
    }
    total
}

/// The workspace slab of headroom's engine (validate/layout.rs allocates the same buffers).
/// Llama-2-7B, batch 1, context 4096, bf16, on a Hopper GPU: 32 MiB cuBLAS + 64,000 B logits +
/// 2,097,152 B rotary tables + 16,384 B token ids + 32·16·130·4 = 266,240 B decode partials.
fn headroom_workspace(req: &InferenceRequest, log: &mut BasisLog) -> Bytes {
    let spec = req.spec;
    let generation = req.device.as_ref().map_or(Generation::Hopper, |d| d.generation);
    let (batch, ctx) = (req.batch, req.context);
    let blas_mib = if matches!(generation, Generation::Hopper | Generation::Blackwell) { 32 } else { 4 };
    let splits = ctx.div_ceil(256);
    let items = [
        (
            "cuBLAS workspace",
            blas_mib << 20,
            "cublasSetWorkspace: NVIDIA's recommended 32 MiB on Hopper and newer, 4 MiB before",
        ),
        ("logits", batch * spec.vocab_size * 2, "batch × vocab bf16, last token of each sequence"),
        ("rotary tables", 2 * ctx * (spec.head_dim / 2) * 4, "cos and sin, f32, context × head_dim/2"),
        ("token ids", batch * ctx * 4, "i32 per token"),
        (
            "decode attention partials",
            batch * spec.num_heads * splits * (spec.head_dim + 2) * 4,
            "split-K partials per 256 keys: f32 output and (max, sum) per head",
        ),
        (
            "dequantized weight (prefill)",
            req.weights.largest_quantized_matrix * 2,
            "largest quantized layer matrix in bf16",
        ),
    ];
    let mut total = Bytes::ZERO;
    for (name, bytes, source) in items {
        if bytes > 0 {
            log.add(format!("headroom workspace: {name}"), bytes, source);
            total += Bytes(bytes);
        }
    }
    total
}

fn fit(req: &InferenceRequest, device: &Device, layout: &Layout, plan: &mut Plan) {
    let kv_req = &layout.kv;
    let capacity = device.capacity;
    let in_use = device.in_use;
    plan.basis.push(device.capacity_basis());
    let worst = &plan.memory;
    let (fits, headroom) = if req.engine == Engine::Vllm {
        let budget = Bytes((capacity.0 as f64 * req.options.gpu_memory_utilization) as u64);
        let non_kv = worst.total.saturating_sub(worst.kv_cache).saturating_sub(worst.cuda_context);
        let pool = budget.saturating_sub(non_kv);
        let (capacity_tokens, max_concurrency) = kv::vllm_pool_capacity(kv_req, pool);
        // Why vLLM would refuse to start, whatever the memory adds up to.
        let mut cannot_start = Vec::new();
        // Its KV-cache check (`check_enough_kv_cache_memory`): some pool, and room in it for one
        // request of max_model_len.
        if pool == Bytes::ZERO {
            cannot_start.push(format!(
                "no memory is left for the KV cache: weights, the profile-run peak and non-torch memory take {} B of the {} B budget (vLLM: \"No available memory for the cache blocks\"): raise --gpu-memory-utilization, use more GPUs or offload weights (--cpu-offload-gb; headroom max finds the least)",
                non_kv.0, budget.0
            ));
        } else if max_concurrency < 1.0 {
            cannot_start.push(format!(
                "one request of max_model_len {} tokens needs more KV cache than the {} B pool holds (vLLM refuses to start): lower --context or raise --gpu-memory-utilization",
                req.context, pool.0
            ));
        }
        // It asks for utilization × the whole card and refuses when less is free.
        let free = capacity.0.saturating_sub(worst.cuda_context.0 + in_use.0);
        if budget.0 > free {
            cannot_start.push(format!(
                "gpu_memory_utilization × GPU memory is {} B, more than is free ({free} B after the CUDA context and other processes): lower --gpu-memory-utilization",
                budget.0
            ));
        }
        if is_mxfp4(req.format) && vllm_moe::Mxfp4Backend::unsupported(device) {
            cannot_start.push(
                "vLLM's MXFP4 method needs compute capability 8.0 or newer (Mxfp4Config.get_min_capability): use an Ampere or newer GPU, or another engine".into(),
            );
        }
        let max_num_seqs = layout.max_num_seqs;
        // (A layer split's stages each pool their own layers' blocks: not checked there.)
        let blocks = (layout.stages == 1).then(|| kv::vllm_hybrid_blocks(kv_req, pool)).flatten();
        if let Some(blocks) = blocks.filter(|&b| b < max_num_seqs) {
            cannot_start.push(format!(
                "max_num_seqs {max_num_seqs} is more than the pool's {blocks} recurrent-state blocks, one per running sequence, which vLLM (0.20 on) refuses (with --mtp it may need more): set --max-num-seqs {blocks} or less, or raise --gpu-memory-utilization"
            ));
        }
        for why in &cannot_start {
            plan.basis.push(super::Basis {
                name: "vLLM cannot start".into(),
                value: "refused".into(),
                source: why.clone(),
            });
        }
        let fits = cannot_start.is_empty() && non_kv + worst.kv_cache <= budget;
        plan.vllm = Some(VllmReport {
            gpu_memory_utilization: req.options.gpu_memory_utilization,
            budget_bytes: budget.0,
            kv_pool_bytes: pool.0,
            kv_capacity_tokens: capacity_tokens,
            max_concurrency,
            cannot_start,
        });
        (fits, budget.0 as i64 - (non_kv + worst.kv_cache).0 as i64)
    } else {
        (worst.total + in_use <= capacity, capacity.0 as i64 - (worst.total + in_use).0 as i64)
    };
    let mut fit = device.fit(fits, headroom);
    if let Some(backend) = req.options.ggml_backend {
        fit.runtime = backend.id();
    }
    plan.fit = Some(fit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensors::inventory;

    /// llama.cpp's split by free memory: 81 units over two GPUs 41 and 40; two units over four
    /// GPUs land on the first and the third (unit k on the first GPU whose running share exceeds
    /// k / units).
    #[test]
    fn llama_cpp_splits_units_by_running_share() {
        let even = |units, gpus| engine::llama_cpp_runs(units, &vec![1.0; gpus]);
        assert_eq!(even(81, 2), vec![41, 40]);
        assert_eq!(even(37, 2), vec![19, 18]);
        assert_eq!(even(33, 3), vec![11, 11, 11]);
        assert_eq!(even(2, 4), vec![1, 0, 1, 0]);
        // -ts 3,1: three quarters of the units on the first GPU.
        assert_eq!(engine::llama_cpp_runs(81, &[3.0, 1.0]), vec![61, 20]);
    }

    /// The doc's example: Llama-2-13B in bf16 has 605 MiB per layer, so 8 GiB moves 13 whole
    /// layers and 0.54 of the 14th; at tensor parallel 2 each GPU's half-layers go twice as far;
    /// a budget beyond the layers moves them all; other engines move nothing.
    #[test]
    fn vllm_offload_takes_the_first_layers_in_order() {
        let text = include_str!("../../data/models/llama-2-13b.json");
        let spec = crate::model::config::parse_config(text, "m", "m.json").unwrap().spec;
        let format = WeightFormat::parse("bf16").unwrap();
        let weights =
            WeightLayout::from_inventory(spec.num_layers, &inventory(&spec), |t| format.tensor_bytes(t, &spec));
        let gib = 1u64 << 30;
        let req = |engine, bytes| InferenceRequest {
            spec: &spec,
            weights: &weights,
            format,
            kv: crate::quant::KvFormat::Bf16,
            context: 4096,
            batch: 1,
            engine,
            options: EngineOptions { cpu_offload_bytes: bytes, ..EngineOptions::default() },
            device: None,
            split: None,
        };
        let layer = weights.layers[0].total.0;
        let o = vllm_offload(&req(Engine::Vllm, 8 * gib), 0..40, 1);
        assert_eq!((o.bytes.0, o.whole), (8 * gib, 0..13));
        assert!(
            (o.partial - (8 * gib - 13 * layer) as f64 / layer as f64).abs() < 1e-12 && (o.partial - 0.54).abs() < 0.01
        );
        assert_eq!(vllm_offload(&req(Engine::Vllm, 8 * gib), 0..40, 2).whole, 0..27);
        let all = vllm_offload(&req(Engine::Vllm, 1024 * gib), 0..40, 1);
        assert_eq!((all.bytes.0, all.whole, all.partial), (40 * layer, 0..40, 0.0));
        assert_eq!(vllm_offload(&req(Engine::LlamaCpp, 8 * gib), 0..40, 1).bytes, Bytes::ZERO);
    }

    /// mlx-lm's quantized cache, Qwen3-4B (36 layers, 8 KV heads of 128, 32 query heads) in
    /// mlx-4bit: below --quantized-kv-start the plan is the 16-bit one; at 32,768 tokens the cache
    /// is 36·2·8·(128·4/8 + 2·2·2) B = 41,472 B per token, and the 2,047-token remainder of the
    /// prompt writes 32 × 2,047 × 32,767 16-bit scores; at 6,000 tokens the conversion comes at
    /// 5,999 (the end of the prompt's last chunk) and holds the whole 16-bit cache, so the peak
    /// is the 16-bit plan's.
    #[test]
    fn mlx_quantized_cache() {
        let text = include_str!("../../data/models/qwen3-4b.json");
        let spec = crate::model::config::parse_config(text, "m", "m.json").unwrap().spec;
        let format = WeightFormat::parse("mlx-4bit").unwrap();
        let weights =
            WeightLayout::from_inventory(spec.num_layers, &inventory(&spec), |t| format.tensor_bytes(t, &spec));
        let req = |kv, context| InferenceRequest {
            spec: &spec,
            weights: &weights,
            format,
            kv,
            context,
            batch: 1,
            engine: Engine::Mlx,
            options: EngineOptions::default(),
            device: None,
            split: None,
        };
        let plan = |kv, context| plan_inference(&req(kv, context)).unwrap().memory;
        let (q4, b16) = (KvFormat::Mlx4, KvFormat::Bf16);
        assert_eq!(req(q4, 4999).cache_format(), b16);
        assert_eq!(plan(q4, 4096), plan(b16, 4096));
        let long = plan(q4, 32_768);
        assert_eq!(long.kv_cache, Bytes(41_472 * 32_768));
        assert!(long.activations.0 >= 32 * 2047 * 32_767 * 2);
        assert!(long.total > plan(b16, 32_768).total);
        assert_eq!(req(q4, 32_768).mlx_conversion_tokens(), Some(6144));
        assert_eq!(plan(q4, 6000).total, plan(b16, 6000).total);
        // A token past a chunk end is a one-token chunk over the quantized cache, not a whole
        // chunk's scores.
        assert!(plan(q4, 6146).total.0 - plan(q4, 6145).total.0 < 1 << 20);
        let chunks_of_512 = EngineOptions { prefill_step_size: 512, ..EngineOptions::default() };
        let small = plan_inference(&InferenceRequest { options: chunks_of_512, ..req(q4, 32_768) }).unwrap().memory;
        assert!(small.total < plan(b16, 32_768).total);
    }
}
