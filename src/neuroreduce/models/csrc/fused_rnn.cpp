// PyTorch bindings of the whole-sequence recurrences in fused_rnn_kernels.h (CPU, float/double).
//
// Tensors (contiguous; K members, B sequences, T steps, I inputs, H units, GH = gates * H,
// O outputs): x [K or 1, B, T, I] (1: shared by all members), w_ih [K, GH, I], b_ih [K, GH],
//   w_hh [K, GH, H], b_hh [K, GH], w_out [K, O, H], b_out [K, O], h0/c0 [K, B, H],
//   y [K, B, T, O].
//   With proj, x holds the projected inputs [K, B, T, GH] and w_ih/b_ih are not used.
// Members run independently (at::parallel_for over members; serial with one thread).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <string>
#include <vector>

#include "fused_rnn_kernels.h"

namespace {

using torch::Tensor;

int cell_id(const std::string& cell) {
  if (cell == "rnn") return nrfused::kRnn;
  if (cell == "lstm") return nrfused::kLstm;
  if (cell == "gru") return nrfused::kGru;
  TORCH_CHECK(false, "unknown cell ", cell);
}

void check(const Tensor& t, const char* name, const Tensor& like) {
  TORCH_CHECK(t.defined() && t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " has the wrong dtype");
}

template <typename T>
nrfused::Member<T> member(const Tensor& x, const Tensor& w_ih, const Tensor& b_ih,
                          const Tensor& w_hh, const Tensor& b_hh, const Tensor& w_out,
                          const Tensor& b_out, const Tensor& h0, const Tensor& c0, bool lstm,
                          bool proj, int64_t k) {
  const int64_t B = h0.size(1), TT = x.size(2), I = x.size(3), H = h0.size(2);
  const int64_t O = w_out.size(1);
  const int64_t GH = w_hh.size(1), kx = x.size(0) == 1 ? 0 : k;
  nrfused::Member<T> m;
  m.x = x.data_ptr<T>() + kx * B * TT * I;
  m.w_ih = proj ? nullptr : w_ih.data_ptr<T>() + k * GH * I;
  m.b_ih = proj ? nullptr : b_ih.data_ptr<T>() + k * GH;
  m.w_hh = w_hh.data_ptr<T>() + k * GH * H;
  m.b_hh = b_hh.data_ptr<T>() + k * GH;
  m.w_out = w_out.data_ptr<T>() + k * O * H;
  m.b_out = b_out.data_ptr<T>() + k * O;
  m.h0 = h0.data_ptr<T>() + k * B * H;
  m.c0 = lstm ? c0.data_ptr<T>() + k * B * H : nullptr;
  m.B = B;
  m.TT = TT;
  m.I = I;
  m.H = H;
  m.O = O;
  m.proj = proj;
  return m;
}

void check_inputs(int cell, const Tensor& x, const Tensor& w_ih, const Tensor& b_ih,
                  const Tensor& w_hh, const Tensor& b_hh, const Tensor& w_out,
                  const Tensor& b_out, const Tensor& h0, const Tensor& c0, bool proj) {
  check(x, "x", x);
  check(w_out, "w_out", x);
  check(b_out, "b_out", x);
  check(w_hh, "w_hh", x);
  check(b_hh, "b_hh", x);
  check(h0, "h0", x);
  if (!proj) {
    check(w_ih, "w_ih", x);
    check(b_ih, "b_ih", x);
  }
  if (cell == nrfused::kLstm) check(c0, "c0", x);
  TORCH_CHECK(x.dim() == 4 && w_hh.dim() == 3 && h0.dim() == 3, "x, w_hh, h0 must be 4-d, 3-d, 3-d");
  const int64_t K = w_hh.size(0), H = h0.size(2), GH = nrfused::kGates[cell] * H;
  TORCH_CHECK(w_hh.size(1) == GH && w_hh.size(2) == H && b_hh.size(0) == K &&
                  b_hh.size(1) == GH && h0.size(0) == K,
              "w_hh must be [K, gates*H, H], b_hh [K, gates*H], h0 [K, B, H]");
  TORCH_CHECK(w_out.dim() == 3 && w_out.size(0) == K && w_out.size(2) == H &&
                  b_out.dim() == 2 && b_out.size(0) == K && b_out.size(1) == w_out.size(1),
              "w_out must be [K, O, H], b_out [K, O]");
  TORCH_CHECK((x.size(0) == K || x.size(0) == 1) && x.size(1) == h0.size(1),
              "x must be [K or 1, B, T, I] with B as in h0");
  if (proj) {
    TORCH_CHECK(x.size(3) == GH, "projected x must have gates*H channels");
  } else {
    TORCH_CHECK(w_ih.size(0) == K && w_ih.size(1) == GH && w_ih.size(2) == x.size(3) &&
                    b_ih.size(0) == K && b_ih.size(1) == GH,
                "w_ih must be [K, gates*H, I], b_ih [K, gates*H]");
  }
}

// Elements of the buffer that forward fills for backward (members K, sequences B, steps T).
int64_t saved_numel(const std::string& cell_name, int64_t K, int64_t B, int64_t TT, int64_t H,
                    bool is_double) {
  const int64_t L = is_double ? nrfused::Vec<double>::L : nrfused::Vec<float>::L;
  return K * ((B + L - 1) / L) * TT * nrfused::kSaved[cell_id(cell_name)] * H * L;
}

// Returns {y [K, B, T, O], h_last [K, B, H], c_last [K, B, H] (LSTM; else undefined), saved
// [K, n] (a view of saved_buf, which must hold saved_numel elements; undefined if saved_buf is
// empty: nothing saved, no backward)}.
std::vector<Tensor> forward(const std::string& cell_name, Tensor x, Tensor w_ih, Tensor b_ih,
                            Tensor w_hh, Tensor b_hh, Tensor w_out, Tensor b_out, Tensor h0,
                            Tensor c0, bool proj, Tensor saved_buf) {
  const bool need_saved = saved_buf.numel() > 0;
  const int cell = cell_id(cell_name);
  check_inputs(cell, x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0, proj);
  const int64_t K = w_hh.size(0), B = h0.size(1), TT = x.size(2), H = h0.size(2);
  const int64_t O = w_out.size(1);
  const bool lstm = cell == nrfused::kLstm;
  Tensor y = torch::empty({K, B, TT, O}, x.options());
  Tensor h_last = torch::empty({K, B, H}, x.options());
  Tensor c_last = lstm ? torch::empty({K, B, H}, x.options()) : Tensor();
  Tensor saved;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_rnn_forward", [&] {
    using T = scalar_t;
    const int64_t L = nrfused::Vec<T>::L, Q = (B + L - 1) / L;
    const int64_t per = Q * TT * nrfused::kSaved[cell] * H * L;
    if (need_saved) {
      check(saved_buf, "saved_buf", x);
      TORCH_CHECK(saved_buf.numel() >= K * per, "saved_buf is too small");
      saved = saved_buf.view({-1}).narrow(0, 0, K * per).view({K, per});
    }
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        auto m = member<T>(x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0, lstm, proj, k);
        T* hk = y.data_ptr<T>() + k * B * TT * O;
        T* hl = h_last.data_ptr<T>() + k * B * H;
        T* cl = lstm ? c_last.data_ptr<T>() + k * B * H : nullptr;
        T* sk = need_saved ? saved.data_ptr<T>() + k * per : nullptr;
        if (cell == nrfused::kGru) nrfused::forward_member<T, nrfused::kGru>(m, hk, hl, cl, sk);
        else if (lstm) nrfused::forward_member<T, nrfused::kLstm>(m, hk, hl, cl, sk);
        else nrfused::forward_member<T, nrfused::kRnn>(m, hk, hl, cl, sk);
      }
    });
  });
  return {y, h_last, c_last, saved};
}

// Returns {dx (undefined unless need_dx), dw_ih, db_ih (undefined with proj), dw_hh, db_hh,
// dw_out, db_out, dh0, dc0 (LSTM; else undefined)}. h_last is forward's output. dh_last/dc_last may be empty (zero gradient); w_ih, b_ih
// (with proj) and c0 (without LSTM) may be empty.
std::vector<Tensor> backward(const std::string& cell_name, Tensor x, Tensor w_ih, Tensor b_ih,
                             Tensor w_hh, Tensor b_hh, Tensor w_out, Tensor b_out, Tensor h0,
                             Tensor c0, bool proj, Tensor saved, Tensor h_last, Tensor dy,
                             Tensor dh_last, Tensor dc_last, bool need_dx) {
  const int cell = cell_id(cell_name);
  check_inputs(cell, x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0, proj);
  check(saved, "saved", x);
  check(h_last, "h_last", x);
  dy = dy.contiguous();
  check(dy, "dy", x);
  const bool lstm = cell == nrfused::kLstm;
  const bool has_dhl = dh_last.defined() && dh_last.numel() > 0;
  const bool has_dcl = lstm && dc_last.defined() && dc_last.numel() > 0;
  if (has_dhl) dh_last = dh_last.contiguous();
  if (has_dcl) dc_last = dc_last.contiguous();
  const int64_t K = w_hh.size(0), B = h0.size(1), TT = x.size(2), I = x.size(3), H = h0.size(2);
  const int64_t GH = w_hh.size(1), O = w_out.size(1);
  TORCH_CHECK(!need_dx || x.size(0) == K, "dx needs x with one slice per member");
  Tensor dx = need_dx ? torch::empty_like(x) : Tensor();
  Tensor dw_ih = proj ? Tensor() : torch::empty({K, GH, I}, x.options());
  Tensor db_ih = proj ? Tensor() : torch::empty({K, GH}, x.options());
  Tensor dw_hh = torch::empty({K, GH, H}, x.options());
  Tensor db_hh = torch::empty({K, GH}, x.options());
  Tensor dw_out = torch::empty({K, O, H}, x.options());
  Tensor db_out = torch::empty({K, O}, x.options());
  Tensor dh0 = torch::empty({K, B, H}, x.options());
  Tensor dc0 = lstm ? torch::empty({K, B, H}, x.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_rnn_backward", [&] {
    using T = scalar_t;
    const int64_t per = saved.size(1);
    at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        auto m = member<T>(x, w_ih, b_ih, w_hh, b_hh, w_out, b_out, h0, c0, lstm, proj, k);
        const T* sk = saved.data_ptr<T>() + k * per;
        const T* dyk = dy.data_ptr<T>() + k * B * TT * O;
        const T* hl = h_last.data_ptr<T>() + k * B * H;
        T* pwo = dw_out.data_ptr<T>() + k * O * H;
        T* pbo = db_out.data_ptr<T>() + k * O;
        const T* dhl = has_dhl ? dh_last.data_ptr<T>() + k * B * H : nullptr;
        const T* dcl = has_dcl ? dc_last.data_ptr<T>() + k * B * H : nullptr;
        T* pdx = need_dx ? dx.data_ptr<T>() + k * B * TT * I : nullptr;
        T* pwi = proj ? nullptr : dw_ih.data_ptr<T>() + k * GH * I;
        T* pbi = proj ? nullptr : db_ih.data_ptr<T>() + k * GH;
        T* pwh = dw_hh.data_ptr<T>() + k * GH * H;
        T* pbh = db_hh.data_ptr<T>() + k * GH;
        T* pdh0 = dh0.data_ptr<T>() + k * B * H;
        T* pdc0 = lstm ? dc0.data_ptr<T>() + k * B * H : nullptr;
        if (cell == nrfused::kGru)
          nrfused::backward_member<T, nrfused::kGru>(m, sk, dyk, hl, dhl, dcl, pdx, pwi, pbi,
                                                    pwh, pbh, pwo, pbo, pdh0, pdc0);
        else if (lstm)
          nrfused::backward_member<T, nrfused::kLstm>(m, sk, dyk, hl, dhl, dcl, pdx, pwi, pbi,
                                                    pwh, pbh, pwo, pbo, pdh0, pdc0);
        else
          nrfused::backward_member<T, nrfused::kRnn>(m, sk, dyk, hl, dhl, dcl, pdx, pwi, pbi,
                                                    pwh, pbh, pwo, pbo, pdh0, pdc0);
      }
    });
  });
  return {dx, dw_ih, db_ih, dw_hh, db_hh, dw_out, db_out, dh0, dc0};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("saved_numel", &saved_numel, "size of the buffer forward saves for backward");
  m.def("forward", &forward, "whole-sequence recurrence of K independent small cells");
  m.def("backward", &backward, "backward through time of forward");
}
