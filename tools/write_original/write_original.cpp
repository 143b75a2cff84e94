// Writes small checkpoints exactly as the original Haskell (hasktorch) program did.
//
// hasktorch's `Serialize.save` calls libtorch's
//     torch::save(std::vector<at::Tensor>, path)
// with the model's parameters as a flat list in the order of the Haskell record
// fields (SPEC "The original checkpoint file"). This program does the same with
// tiny seeded weights of a small config (V=11, E=8, T=6, F=12, 2 layers: 36
// tensors, so that the archive's keys "10".."35" sort differently as strings and
// as numbers), and writes variants for the reader's edge cases:
//
//   original_f32.pt            plain contiguous float32 tensors
//   original_views.pt          the same values, some tensors saved as views:
//                              transposed (non-contiguous strides), narrowed
//                              (storage offset, row stride wider than the row),
//                              and two tensors sharing one storage
//   original_f64.pt            the same values in float64 storages
//   original_f16.pt            the values rounded to float16 storages
//   original_bf16.pt           the values rounded to bfloat16 storages
//   original_requires_grad.pt  the same values with requires_grad = true
//
// Every file is saved under the name "model.pt" and then renamed, so the top
// folder inside each zip is "model", not the file's stem: a reader must find
// "*/data.pkl" rather than assume the stem.
//
// Usage: write_original OUTPUT_DIR      (see the Makefile target `fixture`)

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int64_t V = 11, E = 8, T = 6, F = 12, L = 2;

struct Param {
  std::string name;            // canonical name (not stored in the file: for reading this source)
  std::vector<int64_t> shape;
  double scale;                // standard deviation of the seeded values
  double offset;               // added (1 for LayerNorm weights)
};

std::vector<Param> parameters() {
  std::vector<Param> out;
  out.push_back({"embed.weight", {V, E}, 0.5, 0.0});
  out.push_back({"pos_encoding", {1, T, E}, 0.1, 0.0});
  const double in_e = 1.0 / std::sqrt(double(E)), in_f = 1.0 / std::sqrt(double(F));
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    for (const char* w : {"q", "k", "v", "out"}) {
      out.push_back({p + "attention." + w + ".weight", {E, E}, in_e, 0.0});
      out.push_back({p + "attention." + w + ".bias", {E}, 0.1, 0.0});
    }
    out.push_back({p + "norm1.weight", {E}, 0.1, 1.0});
    out.push_back({p + "norm1.bias", {E}, 0.1, 0.0});
    out.push_back({p + "feed_forward.linear1.weight", {F, E}, in_e, 0.0});
    out.push_back({p + "feed_forward.linear1.bias", {F}, 0.1, 0.0});
    out.push_back({p + "feed_forward.linear2.weight", {E, F}, in_f, 0.0});
    out.push_back({p + "feed_forward.linear2.bias", {E}, 0.1, 0.0});
    out.push_back({p + "norm2.weight", {E}, 0.1, 1.0});
    out.push_back({p + "norm2.bias", {E}, 0.1, 0.0});
  }
  out.push_back({"final_layer.weight", {V, E}, in_e, 0.0});
  out.push_back({"final_layer.bias", {V}, 0.1, 0.0});
  return out;
}

int index_of(const std::vector<Param>& params, const std::string& name) {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name) return int(i);
  throw std::runtime_error("no parameter " + name);
}

// A transposed view with the same values: strides (1, rows) instead of (cols, 1).
torch::Tensor transposed_view(const torch::Tensor& t) { return t.t().contiguous().t(); }

// A narrowed view with the same values: the tensor sits inside a bigger one, so its
// storage offset is not 0 and (for 2-D) its row stride is wider than its row.
torch::Tensor narrowed_view(const torch::Tensor& t, int64_t pad_before, int64_t pad_after) {
  std::vector<int64_t> big(t.sizes().begin(), t.sizes().end());
  big.back() += pad_before + pad_after;
  if (t.dim() >= 2) big[t.dim() - 2] += pad_before + pad_after;
  torch::Tensor holder = torch::full(big, 7.0f);  // the padding must never be read
  torch::Tensor view = holder;
  view = view.narrow(t.dim() - 1, pad_before, t.size(-1));
  if (t.dim() >= 2) view = view.narrow(t.dim() - 2, pad_before, t.size(-2));
  view.copy_(t);
  return view;
}

void save(const std::vector<torch::Tensor>& tensors, const std::string& dir, const std::string& name) {
  const std::string saved_as = dir + "/model.pt";
  const std::string final_path = dir + "/" + name;
  torch::save(tensors, saved_as);  // exactly the call hasktorch's Serialize.save makes
  if (std::rename(saved_as.c_str(), final_path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + saved_as + " to " + final_path);
  std::cout << "wrote " << final_path << " (" << tensors.size() << " tensors)" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_original OUTPUT_DIR" << std::endl;
    return 2;
  }
  const std::string dir = argv[1];
  torch::manual_seed(20240611);
  const auto params = parameters();
  std::vector<torch::Tensor> base;
  for (const auto& p : params) base.push_back(torch::randn(p.shape) * p.scale + p.offset);

  try {
    save(base, dir, "original_f32.pt");

    std::vector<torch::Tensor> views = base;
    for (const char* name : {"layers.0.attention.q.weight", "layers.1.feed_forward.linear1.weight", "final_layer.weight"}) {
      const int i = index_of(params, name);
      views[i] = transposed_view(base[i]);
    }
    views[index_of(params, "embed.weight")] = narrowed_view(base[index_of(params, "embed.weight")], 2, 1);
    views[index_of(params, "pos_encoding")] = narrowed_view(base[index_of(params, "pos_encoding")], 1, 2);
    views[index_of(params, "layers.1.attention.out.bias")] = narrowed_view(base[index_of(params, "layers.1.attention.out.bias")], 3, 0);
    {  // k.bias and v.bias of block 0 are two halves of one storage
      const int k = index_of(params, "layers.0.attention.k.bias"), v = index_of(params, "layers.0.attention.v.bias");
      torch::Tensor both = torch::cat({base[k], base[v]});
      views[k] = both.narrow(0, 0, E);
      views[v] = both.narrow(0, E, E);
    }
    save(views, dir, "original_views.pt");

    std::vector<torch::Tensor> f64, f16, bf16, grad;
    for (const auto& t : base) {
      f64.push_back(t.to(torch::kFloat64));
      f16.push_back(t.to(torch::kFloat16));
      bf16.push_back(t.to(torch::kBFloat16));
      grad.push_back(t.clone().set_requires_grad(true));
    }
    save(f64, dir, "original_f64.pt");
    save(f16, dir, "original_f16.pt");
    save(bf16, dir, "original_bf16.pt");
    save(grad, dir, "original_requires_grad.pt");
  } catch (const std::exception& error) {
    std::cerr << "write_original: " << error.what() << std::endl;
    return 1;
  }
  return 0;
}
