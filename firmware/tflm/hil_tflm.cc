// TFLM behind the hil C API: see hil_tflm.h.
#include "hil_tflm.h"

#include <new>
#include <string.h>

#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_arena_constants.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"

namespace hil {
namespace {

// Painted into the arena before a model is loaded: the highest byte no
// longer holding it after invokes is the measured high-water mark.
constexpr uint8_t kArenaPaint = 0xA5;

void SetError(hil_error *err, uint8_t code, uint32_t detail, int16_t op_index, const char *message) {
  hil_set_error(err, code, detail, op_index, message);
}

// The builtin code, or -1 for a custom operator.
int32_t BuiltinOf(const tflite::Model *model, const tflite::Operator *op) {
  const auto *codes = model->operator_codes();
  if (codes == nullptr || op->opcode_index() >= codes->size()) return -2;
  const tflite::OperatorCode *code = codes->Get(op->opcode_index());
  tflite::BuiltinOperator builtin = tflite::GetBuiltinCode(code);
  return builtin == tflite::BuiltinOperator_CUSTOM ? -1 : static_cast<int32_t>(builtin);
}

// The flatbuffer tensor behind input/output `index` of subgraph 0.
const tflite::Tensor *IoTensor(const tflite::Model *model, bool is_output, uint32_t index) {
  const tflite::SubGraph *graph = model->subgraphs()->Get(0);
  const auto *io = is_output ? graph->outputs() : graph->inputs();
  if (io == nullptr || index >= io->size()) return nullptr;
  int32_t tensor = io->Get(index);
  if (graph->tensors() == nullptr || tensor < 0 || static_cast<uint32_t>(tensor) >= graph->tensors()->size())
    return nullptr;
  return graph->tensors()->Get(tensor);
}

// hil_ops callbacks: C function pointers onto the engine object.
TflmEngine *Self(void *ctx) { return static_cast<TflmEngine *>(ctx); }

int OpsLoad(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs, uint8_t *n_outputs,
            uint32_t *arena_used, hil_error *err) {
  return Self(ctx)->Load(model, len, n_inputs, n_outputs, arena_used, err);
}
int OpsTensorInfo(void *ctx, int is_output, uint32_t index, hil_tensor_info *info) {
  return Self(ctx)->TensorInfo(is_output, index, info);
}
uint8_t *OpsInput(void *ctx, uint32_t index, uint32_t *bytes) { return Self(ctx)->Input(index, bytes); }
int OpsInvoke(void *ctx, hil_error *err) { return Self(ctx)->Invoke(err); }
const uint8_t *OpsOutput(void *ctx, uint32_t index, uint32_t *bytes) { return Self(ctx)->Output(index, bytes); }
void OpsReset(void *ctx) { Self(ctx)->Reset(); }
uint32_t OpsProfile(void *ctx, uint32_t first, hil_op_profile *out, uint32_t max) {
  return Self(ctx)->Profile(first, out, max);
}
void OpsMemory(void *ctx, hil_memory *out) { Self(ctx)->Memory(out); }

}  // namespace

// ---- profiler -------------------------------------------------------------------

uint32_t TflmProfiler::BeginEvent(const char *tag) {
  (void)tag;
  if (depth_++ == 0 && counter_ != nullptr) start_ = counter_();
  return count_;
}

void TflmProfiler::EndEvent(uint32_t event_handle) {
  (void)event_handle;
  if (depth_ == 0) return;
  if (--depth_ != 0) return;  // nested: counted in the enclosing operator
  if (count_ < HIL_TFLM_MAX_OPS) {
    hil_op_profile &e = entries_[count_];
    e.op_index = static_cast<uint16_t>(count_);
    e.builtin = count_ < n_codes_ ? codes_[count_] : 0xFFFFu;
    e.count = counter_ != nullptr ? static_cast<uint32_t>(counter_() - start_) : 0u;
  }
  count_++;
}

void TflmProfiler::SetOperators(const tflite::Model *model) {
  n_codes_ = 0;
  Clear();
  const auto *ops = model->subgraphs()->Get(0)->operators();
  if (ops == nullptr) return;
  for (uint32_t i = 0; i < ops->size() && i < HIL_TFLM_MAX_OPS; i++) {
    int32_t code = BuiltinOf(model, ops->Get(i));
    codes_[n_codes_++] = code < 0 ? static_cast<uint16_t>(tflite::BuiltinOperator_CUSTOM)
                                  : static_cast<uint16_t>(code);
  }
}

// ---- engine ---------------------------------------------------------------------

TflmEngine::TflmEngine(tflite::MicroInterpreter &interpreter, const uint8_t *model_data, size_t model_len,
                       TflmProfiler *profiler, uint8_t *arena, size_t arena_size)
    : interpreter_(&interpreter),
      model_(tflite::GetModel(model_data)),
      fixed_model_(model_data),
      fixed_len_(model_len),
      arena_(arena),
      arena_size_(arena_size),
      own_profiler_(nullptr),
      profiler_(profiler) {
  if (profiler_ != nullptr) profiler_->SetOperators(model_);
}

TflmEngine::TflmEngine(const tflite::MicroOpResolver &resolver, uint8_t *arena, size_t arena_size,
                       uint64_t (*counter)(void))
    : resolver_(&resolver),
      arena_(arena),
      arena_size_(arena_size),
      own_profiler_(counter),
      profiler_(counter != nullptr ? &own_profiler_ : nullptr) {}

void TflmEngine::ops(hil_ops *out) {
  memset(out, 0, sizeof *out);
  out->ctx = this;
  // which kernels: CMSIS_NN is defined by a TFLM library built with them
#if defined(CMSIS_NN)
  out->engine = "tflm-cmsis-nn";
#else
  out->engine = "tflm-reference";
#endif
  out->load = OpsLoad;
  out->tensor_info = OpsTensorInfo;
  out->input = OpsInput;
  out->invoke = OpsInvoke;
  out->output = OpsOutput;
  out->reset = OpsReset;
  out->profile = profiler_ != nullptr ? OpsProfile : nullptr;
  out->memory = OpsMemory;
}

int TflmEngine::Load(const uint8_t *model, uint32_t len, uint8_t *n_inputs, uint8_t *n_outputs,
                     uint32_t *arena_used, hil_error *err) {
  if (resolver_ == nullptr) {
    // An application's interpreter over its compiled-in model: the host
    // must send that model (it checks the device's CRC of it too).
    if (hil_check_model(model, len, fixed_model_, static_cast<uint32_t>(fixed_len_), err) != 0) return -1;
  } else {
    if (owns_interpreter_) {
      reinterpret_cast<tflite::MicroInterpreter *>(storage_)->~MicroInterpreter();
      owns_interpreter_ = false;
      interpreter_ = nullptr;
    }
    flatbuffers::Verifier verifier(model, len);
    if (!tflite::VerifyModelBuffer(verifier)) {
      SetError(err, HIL_ERR_MODEL_INVALID, 0, -1, "not a valid TFLite flatbuffer (verifier failed)");
      return -1;
    }
    const tflite::Model *m = tflite::GetModel(model);
    if (m->version() != TFLITE_SCHEMA_VERSION || m->subgraphs() == nullptr || m->subgraphs()->size() == 0) {
      SetError(err, HIL_ERR_MODEL_INVALID, m->version(), -1, "unsupported schema version or no subgraph");
      return -1;
    }
    // Every operator must be in the op resolver, before TFLM tries.
    int resource_variables = 0;
    for (uint32_t g = 0; g < m->subgraphs()->size(); g++) {
      const auto *ops = m->subgraphs()->Get(g)->operators();
      for (uint32_t i = 0; ops != nullptr && i < ops->size(); i++) {
        int32_t code = BuiltinOf(m, ops->Get(i));
        const TFLMRegistration *found = nullptr;
        if (code >= 0) {
          found = resolver_->FindOp(static_cast<tflite::BuiltinOperator>(code));
          if (code == tflite::BuiltinOperator_VAR_HANDLE) resource_variables++;
        } else if (code == -1) {
          const auto *custom = m->operator_codes()->Get(ops->Get(i)->opcode_index())->custom_code();
          found = custom != nullptr ? resolver_->FindOp(custom->c_str()) : nullptr;
        }
        if (found == nullptr) {
          SetError(err, HIL_ERR_UNSUPPORTED_OP, code < 0 ? 32u /* CUSTOM */ : static_cast<uint32_t>(code),
                   g == 0 ? static_cast<int16_t>(i) : -1,
                   "operator not in this firmware's TFLM op resolver (rebuild with hil build --engine tflm "
                   "--model <this model>)");
          return -1;
        }
      }
    }
    // TFLM's default allocator, built here so the split of the arena is
    // known: planned tensors from the bottom (non-persistent), persistent
    // data from the top (tflite::MicroAllocator::Create does the same).
    memset(arena_, kArenaPaint, arena_size_);
    uint8_t *aligned = tflite::AlignPointerUp(arena_, tflite::MicroArenaBufferAlignment());
    size_t aligned_size = static_cast<size_t>(arena_ + arena_size_ - aligned);
    memory_ = tflite::SingleArenaBufferAllocator::Create(aligned, aligned_size);
    uint8_t *planner_buffer = memory_->AllocatePersistentBuffer(sizeof(tflite::GreedyMemoryPlanner),
                                                                alignof(tflite::GreedyMemoryPlanner));
    tflite::MicroAllocator *allocator =
        planner_buffer != nullptr
            ? tflite::MicroAllocator::Create(memory_, new (planner_buffer) tflite::GreedyMemoryPlanner())
            : nullptr;
    if (allocator == nullptr) {
      SetError(err, HIL_ERR_ARENA_TOO_SMALL, static_cast<uint32_t>(arena_size_), -1,
               "the arena cannot even hold TFLM's allocator");
      return -1;
    }
    if (resource_variables > HIL_TFLM_MAX_RESOURCE_VARIABLES) resource_variables = HIL_TFLM_MAX_RESOURCE_VARIABLES;
    tflite::MicroResourceVariables *variables =
        resource_variables > 0 ? tflite::MicroResourceVariables::Create(allocator, resource_variables) : nullptr;
    interpreter_ = new (storage_) tflite::MicroInterpreter(m, *resolver_, allocator, variables, profiler_);
    owns_interpreter_ = true;
    model_ = m;
    if (interpreter_->AllocateTensors() != kTfLiteOk) {
      SetError(err, HIL_ERR_UNSUPPORTED, static_cast<uint32_t>(arena_size_), -1,
               "TFLM AllocateTensors failed: an operator's Prepare refused the model, or the arena is too small");
      return -1;
    }
    if (profiler_ != nullptr) profiler_->SetOperators(m);
    // The planner used the free middle of the arena as scratch while
    // planning; paint it again, so the high-water mark is what inference
    // touches (GET_MEMORY), not what planning borrowed.
    size_t head = memory_->GetNonPersistentUsedBytes(), tail = memory_->GetPersistentUsedBytes();
    if (head + tail < aligned_size) memset(aligned + head, kArenaPaint, aligned_size - head - tail);
  }
  if (interpreter_->inputs_size() > HIL_MAX_TENSORS_IO || interpreter_->outputs_size() > HIL_MAX_TENSORS_IO) {
    SetError(err, HIL_ERR_LIMIT, HIL_MAX_TENSORS_IO, -1, "more inputs or outputs than HIL_MAX_TENSORS_IO");
    return -1;
  }
  *n_inputs = static_cast<uint8_t>(interpreter_->inputs_size());
  *n_outputs = static_cast<uint8_t>(interpreter_->outputs_size());
  *arena_used = static_cast<uint32_t>(interpreter_->arena_used_bytes());
  return 0;
}

int TflmEngine::TensorInfo(int is_output, uint32_t index, hil_tensor_info *info) {
  if (interpreter_ == nullptr) return -1;
  uint32_t n = static_cast<uint32_t>(is_output ? interpreter_->outputs_size() : interpreter_->inputs_size());
  if (index >= n) return -1;
  const TfLiteTensor *t = is_output ? interpreter_->output(index) : interpreter_->input(index);
  const tflite::Tensor *spec = IoTensor(model_, is_output != 0, index);
  if (t == nullptr || spec == nullptr) return -1;
  info->dtype = static_cast<uint8_t>(spec->type());  // the schema's TensorType, as the protocol says
  info->ndims = 0;
  if (t->dims != nullptr) {
    info->ndims = static_cast<uint8_t>(t->dims->size > 6 ? 6 : t->dims->size);
    for (int i = 0; i < info->ndims; i++) info->dims[i] = t->dims->data[i];
  }
  info->bytes = static_cast<uint32_t>(t->bytes);
  info->scale = t->params.scale;
  info->zero_point = t->params.zero_point;
  return 0;
}

uint8_t *TflmEngine::Input(uint32_t index, uint32_t *bytes) {
  if (interpreter_ == nullptr || index >= interpreter_->inputs_size()) return nullptr;
  TfLiteTensor *t = interpreter_->input(index);
  if (t == nullptr) return nullptr;
  *bytes = static_cast<uint32_t>(t->bytes);
  return t->data.uint8;
}

int TflmEngine::Invoke(hil_error *err) {
  if (interpreter_ == nullptr) {
    SetError(err, HIL_ERR_NO_MODEL, 0, -1, "no model loaded");
    return -1;
  }
  if (profiler_ != nullptr) profiler_->Clear();
  if (interpreter_->Invoke() != kTfLiteOk) {
    int16_t op = profiler_ != nullptr ? static_cast<int16_t>(profiler_->size()) : -1;
    SetError(err, HIL_ERR_INVOKE_FAILED, 0, op, "TFLM Invoke failed");
    return -1;
  }
  return 0;
}

const uint8_t *TflmEngine::Output(uint32_t index, uint32_t *bytes) {
  if (interpreter_ == nullptr || index >= interpreter_->outputs_size()) return nullptr;
  TfLiteTensor *t = interpreter_->output(index);
  if (t == nullptr) return nullptr;
  *bytes = static_cast<uint32_t>(t->bytes);
  return t->data.uint8;
}

void TflmEngine::Reset() {
  if (interpreter_ != nullptr) interpreter_->Reset();
}

uint32_t TflmEngine::Profile(uint32_t first, hil_op_profile *out, uint32_t max) {
  if (profiler_ == nullptr) return 0;
  uint32_t total = profiler_->size() < HIL_TFLM_MAX_OPS ? profiler_->size() : HIL_TFLM_MAX_OPS;
  for (uint32_t i = 0; i < max && first + i < total; i++) out[i] = profiler_->at(first + i);
  return total;
}

void TflmEngine::Memory(hil_memory *out) {
  out->arena_size = static_cast<uint32_t>(arena_size_);
  out->arena_planned = interpreter_ != nullptr ? static_cast<uint32_t>(interpreter_->arena_used_bytes()) : 0u;
  // The painted arena (runner mode): TFLM's tensors from the bottom up,
  // its persistent data from the top down; what inference never touched is
  // the longest run of paint between them (a run, not a scan from one end:
  // alignment gaps stay painted too).
  uint32_t touched = 0;
  if (arena_ != nullptr && resolver_ != nullptr) {
    uint32_t longest = 0, run = 0;
    for (size_t i = 0; i < arena_size_; i++) {
      run = arena_[i] == kArenaPaint ? run + 1 : 0;
      if (run > longest) longest = run;
    }
    touched = static_cast<uint32_t>(arena_size_) - longest;
  }
  out->arena_high_water = touched;
}

}  // namespace hil

// ---- the runner's engine (C) ------------------------------------------------------

extern "C" void hil_tflm_runner_ops(hil_ops *ops, uint8_t *arena, uint32_t arena_size, uint64_t (*counter)(void)) {
  alignas(hil::TflmEngine) static uint8_t storage[sizeof(hil::TflmEngine)];
  hil::TflmEngine *engine = new (storage) hil::TflmEngine(hil_tflm_op_resolver(), arena, arena_size, counter);
  engine->ops(ops);
}
