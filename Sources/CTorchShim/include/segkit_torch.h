/*
 * segkit_torch.h: the plain C interface between SegKit and libtorch.
 *
 * Conventions
 * - A tensor is an opaque handle (`sk_tensor`). Every handle returned through an
 *   out-parameter is owned by the caller and released with `sk_free`.
 * - Every call returns an `sk_status`: 0 on success, non-zero on failure. After a
 *   failure `sk_last_error()` returns libtorch's message; the text lives in
 *   thread-local storage until the next failing call on the same thread.
 * - No C++ exception ever crosses this interface.
 * - Optional tensor arguments are NULL when absent.
 * - Integer codes (dtypes, devices, op kinds) are the enums below; unknown codes
 *   are reported as errors, not undefined behaviour.
 */
#ifndef SEGKIT_TORCH_H
#define SEGKIT_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_tensor_opaque *sk_tensor;
typedef int32_t sk_status;

/* Numbering follows c10::ScalarType so codes are stable across versions. */
typedef enum {
  SK_UINT8 = 0,
  SK_INT8 = 1,
  SK_INT16 = 2,
  SK_INT32 = 3,
  SK_INT64 = 4,
  SK_FLOAT16 = 5,
  SK_FLOAT32 = 6,
  SK_FLOAT64 = 7,
  SK_BOOL = 11,
  SK_BFLOAT16 = 15,
} sk_dtype;

typedef enum { SK_CPU = 0, SK_CUDA = 1, SK_MPS = 2 } sk_device_type;

typedef enum { SK_CONTIGUOUS = 0, SK_CHANNELS_LAST = 1 } sk_memory_format;

/* ---- errors, runtime, devices ---------------------------------------- */
const char *sk_last_error(void);
const char *sk_torch_version(void);
sk_status sk_manual_seed(uint64_t seed);
sk_status sk_set_num_threads(int32_t n);
/* libtorch's operation profiler on this thread (CPU); stop writes a Chrome trace (JSON) to trace_path. */
sk_status sk_profiler_start(void);
sk_status sk_profiler_stop(const char *trace_path);
int32_t sk_get_num_threads(void);
/* Bytes the process's heap has handed out and not yet had back (glibc's mallinfo2:
   every arena and mmapped block); -1 where that is not known. libtorch's CPU tensors
   live there, so sampling it during a pass measures the pass's memory. */
int64_t sk_heap_bytes_in_use(void);
/* Whether this CPU runs oneDNN's bfloat16 convolutions (x86: AVX-512 BW, VL and DQ,
   or AVX-NE-CONVERT; other architectures: assumed, libtorch reports otherwise). */
int32_t sk_cpu_has_bf16_convolutions(void);
/* Whether this CPU has VNNI int8 dot products (x86: AVX512-VNNI or AVX-VNNI; other
   architectures: 1). */
int32_t sk_cpu_has_vnni(void);
int32_t sk_cuda_device_count(void);
int32_t sk_mps_is_available(void);
int32_t sk_is_grad_enabled(void);
/* Sets grad mode for this thread and returns the previous value. */
int32_t sk_set_grad_enabled(int32_t enabled);
/* Inference mode (c10::InferenceMode) for this thread: no autograd bookkeeping
 * at all, cheaper than disabled grad mode. Guards must be exited in reverse
 * order of entry, on the thread that entered them. */
typedef struct sk_guard_opaque *sk_guard;
sk_status sk_inference_mode_enter(sk_guard *out);
void sk_inference_mode_exit(sk_guard guard);

/* ---- lifetime and properties ----------------------------------------- */
void sk_free(sk_tensor t);
sk_status sk_dim(sk_tensor t, int64_t *out);
/* Writes min(dim, capacity) sizes (or strides) into `out`. */
sk_status sk_sizes(sk_tensor t, int64_t *out, int64_t capacity);
sk_status sk_strides(sk_tensor t, int64_t *out, int64_t capacity);
sk_status sk_dtype_of(sk_tensor t, int32_t *out);
sk_status sk_device_of(sk_tensor t, int32_t *type, int32_t *index);
sk_status sk_is_contiguous(sk_tensor t, sk_memory_format format, int32_t *out);
sk_status sk_item(sk_tensor t, double *out);
/* Formats the tensor as PyTorch prints it; free the text with sk_free_string. */
sk_status sk_describe(sk_tensor t, char **out);
void sk_free_string(char *s);

/* ---- creation --------------------------------------------------------- */
typedef enum { SK_FILL_ZEROS, SK_FILL_ONES, SK_FILL_EMPTY, SK_FILL_RAND, SK_FILL_RANDN } sk_fill;
sk_status sk_filled(sk_fill fill, const int64_t *shape, int64_t ndim, sk_dtype dtype,
                    sk_device_type device, int32_t index, sk_tensor *out);
sk_status sk_full(const int64_t *shape, int64_t ndim, double value, sk_dtype dtype,
                  sk_device_type device, int32_t index, sk_tensor *out);
sk_status sk_arange(double start, double end, double step, sk_dtype dtype, sk_device_type device,
                    int32_t index, sk_tensor *out);
sk_status sk_randint(int64_t low, int64_t high, const int64_t *shape, int64_t ndim, sk_dtype dtype,
                     sk_device_type device, int32_t index, sk_tensor *out);
/* Copies `nbytes` of contiguous little-endian elements into a new CPU tensor. */
sk_status sk_from_bytes(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim,
                        sk_dtype dtype, sk_tensor *out);
/* Copies the elements (any device, any layout) into `dst` in row-major order. */
sk_status sk_copy_to_bytes(sk_tensor t, void *dst, size_t nbytes);

/* ---- conversion and layout ------------------------------------------- */
sk_status sk_to(sk_tensor t, sk_dtype dtype, sk_device_type device, int32_t index, sk_tensor *out);
sk_status sk_contiguous(sk_tensor t, sk_memory_format format, sk_tensor *out);
sk_status sk_clone(sk_tensor t, sk_tensor *out);
sk_status sk_copy_(sk_tensor dst, sk_tensor src);

/* ---- shape ------------------------------------------------------------ */
sk_status sk_reshape(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out);
sk_status sk_view(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out);
sk_status sk_expand(sk_tensor t, const int64_t *shape, int64_t ndim, sk_tensor *out);
sk_status sk_permute(sk_tensor t, const int64_t *dims, int64_t ndim, sk_tensor *out);
sk_status sk_flip(sk_tensor t, const int64_t *dims, int64_t ndim, sk_tensor *out);
sk_status sk_repeat(sk_tensor t, const int64_t *repeats, int64_t ndim, sk_tensor *out);
sk_status sk_as_strided(sk_tensor t, const int64_t *shape, const int64_t *strides, int64_t ndim,
                        int64_t offset, sk_tensor *out);
sk_status sk_transpose(sk_tensor t, int64_t dim0, int64_t dim1, sk_tensor *out);
sk_status sk_slice(sk_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, sk_tensor *out);
sk_status sk_select(sk_tensor t, int64_t dim, int64_t index, sk_tensor *out);
sk_status sk_index_select(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor *out);
sk_status sk_masked_select(sk_tensor t, sk_tensor mask, sk_tensor *out);
sk_status sk_gather(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor *out);
/* A copy of t with src written at index along dim (torch.scatter). */
sk_status sk_scatter(sk_tensor t, int64_t dim, sk_tensor index, sk_tensor src, sk_tensor *out);
sk_status sk_squeeze(sk_tensor t, int64_t dim, int32_t all_dims, sk_tensor *out);
sk_status sk_unsqueeze(sk_tensor t, int64_t dim, sk_tensor *out);
sk_status sk_cat(const sk_tensor *ts, int64_t n, int64_t dim, sk_tensor *out);
sk_status sk_stack(const sk_tensor *ts, int64_t n, int64_t dim, sk_tensor *out);

/* ---- elementwise ------------------------------------------------------ */
typedef enum {
  SK_ADD, SK_SUB, SK_MUL, SK_DIV, SK_POW, SK_MAXIMUM, SK_MINIMUM, SK_REMAINDER, SK_FLOOR_DIV,
  SK_EQ, SK_NE, SK_LT, SK_LE, SK_GT, SK_GE, SK_LOGICAL_AND, SK_LOGICAL_OR, SK_ATAN2,
} sk_binary_op;
sk_status sk_binary(sk_binary_op op, sk_tensor a, sk_tensor b, sk_tensor *out);
sk_status sk_binary_scalar(sk_binary_op op, sk_tensor a, double b, sk_tensor *out);
/* Scalar on the left: b op a (e.g. 1 - x, 2 / x, 2 ** x). */
sk_status sk_scalar_binary(sk_binary_op op, double a, sk_tensor b, sk_tensor *out);
/* In place: a = a op b. Comparison and logical ops are rejected. */
sk_status sk_binary_(sk_binary_op op, sk_tensor a, sk_tensor b);
sk_status sk_binary_scalar_(sk_binary_op op, sk_tensor a, double b);

typedef enum {
  SK_NEG, SK_EXP, SK_LOG, SK_SQRT, SK_RSQRT, SK_ABS, SK_SIGMOID, SK_TANH, SK_RELU, SK_RELU6,
  SK_HARDSWISH, SK_HARDSIGMOID, SK_FLOOR, SK_CEIL, SK_ROUND, SK_SIGN, SK_SIN, SK_COS,
  SK_LOGICAL_NOT, SK_LOG1P, SK_EXPM1, SK_RECIPROCAL, SK_SQUARE, SK_ISNAN, SK_ISFINITE, SK_ZERO, SK_SILU,
} sk_unary_op;
sk_status sk_unary(sk_unary_op op, sk_tensor a, sk_tensor *out);
sk_status sk_unary_(sk_unary_op op, sk_tensor a);

sk_status sk_clamp(sk_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi, sk_tensor *out);
sk_status sk_clamp_(sk_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi);
sk_status sk_leaky_relu(sk_tensor t, double slope, sk_tensor *out);
sk_status sk_where(sk_tensor cond, sk_tensor a, sk_tensor b, sk_tensor *out);
sk_status sk_masked_fill(sk_tensor t, sk_tensor mask, double value, sk_tensor *out);
sk_status sk_fill_(sk_tensor t, double value);
sk_status sk_uniform_(sk_tensor t, double from, double to);
sk_status sk_normal_(sk_tensor t, double mean, double std);
/* a += alpha * b * c, the fused update optimizers use. */
sk_status sk_addcmul_(sk_tensor a, sk_tensor b, sk_tensor c, double alpha);
sk_status sk_addcdiv_(sk_tensor a, sk_tensor b, sk_tensor c, double alpha);
/* a = a + alpha * b */
sk_status sk_add_scaled_(sk_tensor a, sk_tensor b, double alpha);
/* a = a + weight * (b - a) */
sk_status sk_lerp_(sk_tensor a, sk_tensor b, double weight);

/* ---- reductions ------------------------------------------------------- */
typedef enum { SK_SUM, SK_MEAN, SK_AMAX, SK_AMIN, SK_PROD, SK_VAR, SK_STD, SK_ALL, SK_ANY, SK_NORM2 } sk_reduce_op;
/* ndim == 0 reduces over all dimensions. VAR and STD are unbiased. */
sk_status sk_reduce(sk_reduce_op op, sk_tensor t, const int64_t *dims, int64_t ndim, int32_t keepdim,
                    sk_tensor *out);
/* max or min along a dimension: values and int64 indices. */
sk_status sk_max_dim(sk_tensor t, int64_t dim, int32_t keepdim, int32_t take_min, sk_tensor *values,
                     sk_tensor *indices);
/* all_dims != 0: index into the flattened tensor. */
sk_status sk_argmax(sk_tensor t, int64_t dim, int32_t all_dims, int32_t keepdim, int32_t take_min,
                    sk_tensor *out);
sk_status sk_topk(sk_tensor t, int64_t k, int64_t dim, int32_t largest, sk_tensor *values,
                  sk_tensor *indices);
sk_status sk_sort(sk_tensor t, int64_t dim, int32_t descending, sk_tensor *values, sk_tensor *indices);
sk_status sk_bincount(sk_tensor t, sk_tensor weights, int64_t minlength, sk_tensor *out);
sk_status sk_allclose(sk_tensor a, sk_tensor b, double rtol, double atol, int32_t *out);

/* ---- linear algebra and activations over a dimension ------------------ */
sk_status sk_matmul(sk_tensor a, sk_tensor b, sk_tensor *out);
sk_status sk_linear(sk_tensor x, sk_tensor weight, sk_tensor bias, sk_tensor *out);
sk_status sk_softmax(sk_tensor t, int64_t dim, int32_t log, sk_tensor *out);
sk_status sk_one_hot(sk_tensor t, int64_t num_classes, sk_tensor *out);

/* ---- vision ----------------------------------------------------------- */
/* Two-element arrays are (height, width). */
sk_status sk_conv2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups, sk_tensor *out);
/* oneDNN's fused convolution (CPU, float32 or bfloat16): conv2d, then with `residual` adds it, then
   `activation` ("none", "relu", "hardtanh" with scalars min and max, "hardswish", "sigmoid",
   "leaky_relu" with its slope). */
sk_status sk_conv2d_fused(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride, const int64_t *padding,
                          const int64_t *dilation, int64_t groups, const char *activation, const double *scalars,
                          int32_t scalar_count, sk_tensor residual, sk_tensor *out);
/* NNPACK's float32 CPU convolution, stride 1 (Winograd F(6x6, 3x3) for 3x3 kernels): x and w are
   read in the contiguous (N, C, H, W) layout, copied there when laid out otherwise; the output is
   contiguous. Then `activation`, as sk_conv2d_fused names it, applied in place.
   sk_nnpack_available says whether this libtorch has NNPACK and it runs on this CPU. */
int32_t sk_nnpack_available(void);
sk_status sk_nnpack_conv2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *padding, const char *activation,
                           const double *scalars, int32_t scalar_count, sk_tensor *out);
/* int8 convolution (CPU, oneDNN): sk_qconv_prepack packs an int8 weight [O, I/groups, kh, kw] quantised
   per output channel by `w_scales` (float32 [O]) for inputs of `x_shape` (4 values) quantised with
   `x_scale` and `x_zero_point`; sk_qconv2d quantises the float32 input x to uint8 with them, convolves,
   adds the float32 bias, applies `activation` (as sk_conv2d_fused) and returns float32.
   `w_zero_points` are int64 zeros [O]. */
sk_status sk_qconv_prepack(sk_tensor w, sk_tensor w_scales, double x_scale, int64_t x_zero_point,
                           const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups,
                           const int64_t *x_shape, sk_tensor *out);
sk_status sk_qconv2d(sk_tensor x, double x_scale, int64_t x_zero_point, sk_tensor packed, sk_tensor w_scales,
                     sk_tensor w_zero_points, sk_tensor b, const int64_t *stride, const int64_t *padding,
                     const int64_t *dilation, int64_t groups, const char *activation, const double *scalars,
                     int32_t scalar_count, sk_tensor *out);
/* int8 activations kept in uint8 between layers (values with a per-tensor scale and zero point,
   channels-last), as ONNX Runtime's QDQ graphs keep them: sk_quantize_u8 quantises float32 x (values
   past the range saturate); sk_dequantize_u8 returns float32; sk_max_pool2d_u8 max-pools the values
   (the affine map is increasing, so pooling commutes with it). sk_qconv2d_u8 convolves uint8 x
   (x_scale, x_zero_point) with a weight packed by sk_qconv_prepack, adds the bias, then with `accum`
   (uint8 with accum_scale and accum_zero_point; NULL for none; left unchanged unless accum_in_place,
   when the kernel may write the result into it) adds it, applies `activation` ("none" or "relu" with
   accum; as sk_conv2d_fused without) and requantises the result to uint8 with out_scale and
   out_zero_point (out_scale 0: the result in float32 instead). */
sk_status sk_quantize_u8(sk_tensor x, double scale, int64_t zero_point, sk_tensor *out);
sk_status sk_dequantize_u8(sk_tensor x, double scale, int64_t zero_point, sk_tensor *out);
sk_status sk_max_pool2d_u8(sk_tensor x, double scale, int64_t zero_point, const int64_t *kernel, const int64_t *stride,
                           const int64_t *padding, int32_t ceil_mode, sk_tensor *out);
sk_status sk_qconv2d_u8(sk_tensor x, double x_scale, int64_t x_zero_point, sk_tensor packed, sk_tensor w_scales,
                        sk_tensor w_zero_points, sk_tensor b, const int64_t *stride, const int64_t *padding,
                        const int64_t *dilation, int64_t groups, sk_tensor accum, double accum_scale,
                        int64_t accum_zero_point, int32_t accum_in_place, const char *activation, const double *scalars,
                        int32_t scalar_count, double out_scale, int64_t out_zero_point, sk_tensor *out);
sk_status sk_conv_transpose2d(sk_tensor x, sk_tensor w, sk_tensor b, const int64_t *stride,
                              const int64_t *padding, const int64_t *output_padding, int64_t groups,
                              const int64_t *dilation, sk_tensor *out);
/* `indices` may be NULL when the argmax positions are not wanted. */
sk_status sk_max_pool2d(sk_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                        const int64_t *dilation, int32_t ceil_mode, sk_tensor *out, sk_tensor *indices);
sk_status sk_max_unpool2d(sk_tensor x, sk_tensor indices, const int64_t *output_size, sk_tensor *out);
/* divisor_override <= 0 means none. */
sk_status sk_avg_pool2d(sk_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                        int32_t ceil_mode, int32_t count_include_pad, int64_t divisor_override,
                        sk_tensor *out);
sk_status sk_adaptive_avg_pool2d(sk_tensor x, const int64_t *output_size, sk_tensor *out);
sk_status sk_adaptive_max_pool2d(sk_tensor x, const int64_t *output_size, sk_tensor *out);
/* In training mode the running statistics (when given) are updated in place. */
sk_status sk_batch_norm(sk_tensor x, sk_tensor weight, sk_tensor bias, sk_tensor running_mean,
                        sk_tensor running_var, int32_t training, double momentum, double eps,
                        sk_tensor *out);
sk_status sk_group_norm(sk_tensor x, int64_t groups, sk_tensor weight, sk_tensor bias, double eps,
                        sk_tensor *out);
/* feature != 0 zeroes whole channels (Dropout2d). */
sk_status sk_dropout(sk_tensor x, double p, int32_t training, int32_t feature, sk_tensor *out);

typedef enum { SK_NEAREST = 0, SK_BILINEAR = 1, SK_BICUBIC = 2, SK_NEAREST_EXACT = 3 } sk_interp_mode;
/* scales <= 0 are absent; when present they set the source-coordinate scale as
 * F.interpolate(scale_factor=..., recompute_scale_factor=None) does. */
sk_status sk_interpolate(sk_tensor x, sk_interp_mode mode, const int64_t *size, const double *scales,
                         int32_t align_corners, sk_tensor *out);
typedef enum { SK_PAD_ZEROS = 0, SK_PAD_BORDER = 1, SK_PAD_REFLECTION = 2 } sk_grid_padding;
sk_status sk_grid_sample(sk_tensor x, sk_tensor grid, sk_interp_mode mode, sk_grid_padding padding,
                         int32_t align_corners, sk_tensor *out);
typedef enum { SK_PAD_CONSTANT = 0, SK_PAD_REFLECT = 1, SK_PAD_REPLICATE = 2, SK_PAD_CIRCULAR = 3 } sk_pad_mode;
/* pads as F.pad: (left, right, top, bottom, ...) from the last dimension backwards. */
sk_status sk_pad(sk_tensor x, const int64_t *pads, int64_t npads, sk_pad_mode mode, double value,
                 sk_tensor *out);

/* ---- autograd --------------------------------------------------------- */
sk_status sk_set_requires_grad(sk_tensor t, int32_t requires_grad);
sk_status sk_requires_grad(sk_tensor t, int32_t *out);
/* grad may be NULL for a scalar output. */
sk_status sk_backward(sk_tensor t, sk_tensor grad, int32_t retain_graph);
/* *out is NULL when the tensor has no gradient yet. */
sk_status sk_grad(sk_tensor t, sk_tensor *out);
sk_status sk_set_grad(sk_tensor t, sk_tensor grad);
/* set_to_none != 0 drops the gradient; otherwise it is filled with zeros. */
sk_status sk_zero_grad(sk_tensor t, int32_t set_to_none);
sk_status sk_detach(sk_tensor t, sk_tensor *out);
sk_status sk_is_leaf(sk_tensor t, int32_t *out);

/* ---- losses (shim_nn.cpp) ---- */
/* Numbering follows at::Reduction. */
typedef enum { SK_REDUCTION_NONE = 0, SK_REDUCTION_MEAN = 1, SK_REDUCTION_SUM = 2 } sk_reduction;
/* F.cross_entropy: logits (N, C, ...) against int64 class indices (N, ...);
 * weight (C) may be NULL. */
sk_status sk_cross_entropy(sk_tensor logits, sk_tensor target, sk_tensor weight, sk_reduction reduction,
                           int64_t ignore_index, double label_smoothing, sk_tensor *out);
/* F.binary_cross_entropy_with_logits; weight and pos_weight may be NULL. */
sk_status sk_bce_with_logits(sk_tensor logits, sk_tensor target, sk_tensor weight, sk_tensor pos_weight,
                             sk_reduction reduction, sk_tensor *out);
/* torch.linalg.vector_norm over all elements; ord may be INFINITY. */
sk_status sk_vector_norm(sk_tensor t, double ord, sk_tensor *out);

/* ---- process groups (shim_distributed.cpp) ---------------------------- */
/* c10d, PyTorch's distributed engine. A group is joined through a TCP store that
 * rank 0 serves at host:port; every call of every rank waits at most timeout_ms
 * (joining included) and then fails with libtorch's message. */
typedef struct sk_process_group_opaque *sk_process_group;
typedef enum { SK_BACKEND_GLOO = 0, SK_BACKEND_NCCL = 1 } sk_backend;
typedef enum { SK_COLLECTIVE_SUM = 0, SK_COLLECTIVE_MAX = 1, SK_COLLECTIVE_MIN = 2 } sk_collective_op;
sk_status sk_process_group_new(const char *host, int32_t port, int32_t rank, int32_t world_size, sk_backend backend,
                               int64_t timeout_ms, sk_process_group *out);
void sk_process_group_free(sk_process_group group);
/* In place, on every rank: the tensor becomes the reduction of all ranks' tensors. */
sk_status sk_all_reduce(sk_process_group group, sk_tensor t, sk_collective_op op);
/* In place: every rank's tensor becomes rank root's. */
sk_status sk_broadcast(sk_process_group group, sk_tensor t, int32_t root);
/* out[r] (world_size new tensors) is rank r's t. */
sk_status sk_all_gather(sk_process_group group, sk_tensor t, sk_tensor *out);
sk_status sk_barrier(sk_process_group group);
/* Training-mode batch norm over the batches of every rank of `group` (PyTorch's
 * SyncBatchNorm): statistics all-reduced in forward, their gradients in backward.
 * input (N, C, ...); weight and bias (C) may be NULL; running_mean and running_var
 * (C) are updated in place with the global batch's mean and unbiased variance. */
sk_status sk_sync_batch_norm(sk_process_group group, sk_tensor input, sk_tensor weight, sk_tensor bias,
                             sk_tensor running_mean, sk_tensor running_var, double momentum, double eps, sk_tensor *out);
/* Gradients summed over the ranks while backward still runs, as DDP's reducer does it.
 * The parameters (which must require gradients) are cut into buckets in reverse
 * order, the first up to first_bucket_bytes, the others up to bucket_bytes, and each
 * gets a hook that runs once its gradient is accumulated. After arm, a backward pass
 * divides each gradient by `divisor` as it is ready and starts a bucket's all-reduce
 * as soon as all its gradients are (buckets start in order, so every rank starts the
 * same collectives in the same order); finish starts the buckets still waiting (those
 * holding a parameter without gradient), waits for all and writes the sums into the
 * gradients. Parameters without a gradient keep none. The group must outlive it. */
typedef struct sk_gradient_exchange_opaque *sk_gradient_exchange;
sk_status sk_gradient_exchange_new(sk_process_group group, const sk_tensor *parameters, int64_t count,
                                   int64_t first_bucket_bytes, int64_t bucket_bytes, sk_gradient_exchange *out);
void sk_gradient_exchange_free(sk_gradient_exchange exchange);
sk_status sk_gradient_exchange_arm(sk_gradient_exchange exchange, double divisor);
/* buckets_started_in_backward (may be NULL): how many buckets the hooks started. */
sk_status sk_gradient_exchange_finish(sk_gradient_exchange exchange, int64_t *buckets_started_in_backward);
/* The number of buckets. */
int64_t sk_gradient_exchange_bucket_count(sk_gradient_exchange exchange);

#ifdef __cplusplus
}
#endif
#endif
