// Whole-sequence forward and backward of one member's small recurrent cell (RNN-tanh, LSTM,
// GRU) and its linear read-out, written without torch so that it can be compiled and timed on
// its own.
//
// The B sequences of a member run in blocks of L lanes (8 floats / 4 doubles: one 256-bit
// vector, GCC/Clang vector extensions), so every operation of a step is one vector operation
// per unit whatever the hidden size, and the weights are scalars broadcast over lanes. The input
// projection is done here too, and backward accumulates dW/db per lane, reduced at the end.
// Formulas and gate order are PyTorch's (GRU: r, z, n with n = tanh(W_in x + b_in + r * (W_hn h
// + b_hn)); LSTM: i, f, g, o; RNN: tanh).
//
// Layouts (row-major, contiguous; G = gates, GH = G * H):
//   x [B, T, I], h0/c0 [B, H], y [B, T, O], w_ih [GH, I], b_ih [GH], w_hh [GH, H], b_hh [GH],
//   w_out [O, H], b_out [O]
//   saved [Q, T, S * H, L] with Q = ceil(B / L) lane blocks and S = kSaved[cell]

#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace nrfused {

enum Cell { kRnn = 0, kLstm = 1, kGru = 2 };
constexpr int kGates[3] = {1, 4, 3};
// Saved per step and unit: RNN h_prev, h; LSTM i, f, g, o, c_prev, h_prev, tanh(c);
// GRU r, z, n, W_hn h + b_hn, h_prev.
constexpr int kSaved[3] = {2, 7, 5};

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32)));
  typedef int32_t itype __attribute__((vector_size(32)));
  static constexpr int L = 8;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32)));
  static constexpr int L = 4;
};

template <typename V>
inline V vload(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
inline void vstore(void* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// exp on 8 floats: Cephes range reduction + degree-5 polynomial (about 1 ulp), NaN -> NaN.
inline Vec<float>::type vexp(Vec<float>::type x) {
  using V = Vec<float>::type;
  using VI = Vec<float>::itype;
  x = x < -87.0f ? V{} - 87.0f : x;
  x = x > 88.0f ? V{} + 88.0f : x;
  V fx = x * 1.44269504088896341f + 0.5f;
  V fl = __builtin_convertvector(__builtin_convertvector(fx, VI), V);
  fl = fl + __builtin_convertvector(fl > fx, V);  // truncation -> floor (mask is -1 where true)
  V r = x - fl * 0.693359375f;
  r = r + fl * 2.12194440e-4f;
  V y = V{} + 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  VI bits = (__builtin_convertvector(fl, VI) + 127) << 23;
  return y * (V)bits;
}
inline Vec<float>::type vsigmoid(Vec<float>::type x) { return 1.0f / (1.0f + vexp(-x)); }
inline Vec<float>::type vtanh(Vec<float>::type x) { return 1.0f - 2.0f / (vexp(2.0f * x) + 1.0f); }

// double: exact library functions (used for gradient checks, speed does not matter)
inline Vec<double>::type vsigmoid(Vec<double>::type x) {
  for (int l = 0; l < 4; ++l) x[l] = 1.0 / (1.0 + std::exp(-x[l]));
  return x;
}
inline Vec<double>::type vtanh(Vec<double>::type x) {
  for (int l = 0; l < 4; ++l) x[l] = std::tanh(x[l]);
  return x;
}

// Lane-gather n values p[l * stride + j] (j < n) of nb valid lanes; padded lanes are 0.
template <typename T, typename V>
inline void gather(const T* p, int64_t stride, int64_t nb, int64_t n, V* out) {
  constexpr int L = Vec<T>::L;
  for (int64_t j = 0; j < n; ++j) {
    V v{};
    for (int64_t l = 0; l < nb && l < L; ++l) v[l] = p[l * stride + j];
    out[j] = v;
  }
}
template <typename T, typename V>
inline void scatter(T* p, int64_t stride, int64_t nb, int64_t n, const V* in) {
  constexpr int L = Vec<T>::L;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t l = 0; l < nb && l < L; ++l) p[l * stride + j] = in[j][l];
}

template <typename T>
struct Member {
  const T* x;     // [B, T, I]; with proj, the projected inputs [B, T, GH] (I == GH)
  const T* w_ih;  // [GH, I] (unused with proj)
  const T* b_ih;  // [GH] (unused with proj)
  const T* w_hh;  // [GH, H]
  const T* b_hh;  // [GH]
  const T* w_out;  // [O, H] read-out
  const T* b_out;  // [O]
  const T* h0;    // [B, H]
  const T* c0;    // [B, H] (LSTM) or null
  int64_t B, TT, I, H, O;
  bool proj;  // x already holds W_ih x + b_ih (done by the caller for many inputs)
};

// Forward of one member: writes the read-out y [B, T, O] = h_t W_out^T + b_out, h_T [B, H],
// c_T [B, H] (LSTM), saved (or null).
// Time is the outer loop and lane blocks the inner one, so the blocks' independent steps overlap.
template <typename T, int CELL>
void forward_member(const Member<T>& m, T* y, T* h_last, T* c_last, T* saved) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::L, G = kGates[CELL], S = kSaved[CELL];
  const int64_t B = m.B, TT = m.TT, I = m.I, H = m.H, O = m.O, GH = G * H;
  const int64_t Q = (B + L - 1) / L;
  std::vector<V> hq(Q * H), cq(Q * H), xv(I), a(GH), an(H), yv(O);
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t b0 = q * L, nb = B - b0 < L ? B - b0 : L;
    gather(m.h0 + b0 * H, H, nb, H, hq.data() + q * H);
    if (CELL == kLstm) gather(m.c0 + b0 * H, H, nb, H, cq.data() + q * H);
  }
  for (int64_t t = 0; t < TT; ++t) {
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t b0 = q * L, nb = B - b0 < L ? B - b0 : L;
      V* h = hq.data() + q * H;
      V* c = cq.data() + q * H;
      gather(m.x + (b0 * TT + t) * I, TT * I, nb, I, xv.data());
      // a = b_ih + W_ih x (+ b_hh + W_hh h, except the GRU n gate which keeps them apart)
      for (int64_t j = 0; j < GH; ++j) {
        V acc;
        if (m.proj) {
          acc = xv[j];
        } else {
          acc = V{} + m.b_ih[j];
          const T* w = m.w_ih + j * I;
          for (int64_t i = 0; i < I; ++i) acc += w[i] * xv[i];
        }
        V rec = V{} + m.b_hh[j];
        const T* u = m.w_hh + j * H;
        for (int64_t i = 0; i < H; ++i) rec += u[i] * h[i];
        if (CELL == kGru && j >= 2 * H) {
          a[j] = acc;
          an[j - 2 * H] = rec;
        } else {
          a[j] = acc + rec;
        }
      }
      T* s = saved ? saved + (q * TT + t) * S * H * L : nullptr;
      for (int64_t j = 0; j < H; ++j) {
        V hp = h[j];
        if (CELL == kRnn) {
          h[j] = vtanh(a[j]);
          if (s) {
            vstore(s + j * L, hp);
            vstore(s + (H + j) * L, h[j]);
          }
        } else if (CELL == kLstm) {
          V ig = vsigmoid(a[j]), fg = vsigmoid(a[H + j]), gg = vtanh(a[2 * H + j]);
          V og = vsigmoid(a[3 * H + j]);
          V cp = c[j];
          c[j] = fg * cp + ig * gg;
          V tc = vtanh(c[j]);
          h[j] = og * tc;
          if (s) {
            vstore(s + j * L, ig);
            vstore(s + (H + j) * L, fg);
            vstore(s + (2 * H + j) * L, gg);
            vstore(s + (3 * H + j) * L, og);
            vstore(s + (4 * H + j) * L, cp);
            vstore(s + (5 * H + j) * L, hp);
            vstore(s + (6 * H + j) * L, tc);
          }
        } else {
          V r = vsigmoid(a[j]), z = vsigmoid(a[H + j]);
          V n = vtanh(a[2 * H + j] + r * an[j]);
          h[j] = n + z * (hp - n);
          if (s) {
            vstore(s + j * L, r);
            vstore(s + (H + j) * L, z);
            vstore(s + (2 * H + j) * L, n);
            vstore(s + (3 * H + j) * L, an[j]);
            vstore(s + (4 * H + j) * L, hp);
          }
        }
      }
      for (int64_t o = 0; o < O; ++o) {
        V acc = V{} + m.b_out[o];
        const T* w = m.w_out + o * H;
        for (int64_t j = 0; j < H; ++j) acc += w[j] * h[j];
        yv[o] = acc;
      }
      scatter(y + (b0 * TT + t) * O, TT * O, nb, O, yv.data());
    }
  }
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t b0 = q * L, nb = B - b0 < L ? B - b0 : L;
    scatter(h_last + b0 * H, H, nb, H, hq.data() + q * H);
    if (CELL == kLstm) scatter(c_last + b0 * H, H, nb, H, cq.data() + q * H);
  }
}

// Gradients of one member (outputs overwritten): dx [B, T, I] (or null), dw_ih [GH, I] and
// db_ih [GH] (both untouched with proj), dw_hh [GH, H], db_hh [GH], dw_out [O, H], db_out [O],
// dh0 [B, H], dc0 [B, H] (LSTM). dy [B, T, O] is the loss gradient of y; dh_last/dc_last
// [B, H] that of the final states (or null); h_last [B, H] is the forward's final state.
template <typename T, int CELL>
void backward_member(const Member<T>& m, const T* saved, const T* dy, const T* h_last,
                     const T* dh_last, const T* dc_last, T* dx, T* dw_ih, T* db_ih, T* dw_hh,
                     T* db_hh, T* dw_out, T* db_out, T* dh0, T* dc0) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::L, G = kGates[CELL], S = kSaved[CELL];
  const int64_t B = m.B, TT = m.TT, I = m.I, H = m.H, O = m.O, GH = G * H;
  const int64_t Q = (B + L - 1) / L;
  std::vector<V> acc_wih(GH * I, V{}), acc_bih(GH, V{}), acc_whh(GH * H, V{}), acc_bhh(GH, V{});
  std::vector<V> acc_wo(O * H, V{}), acc_bo(O, V{}), hn(H);
  std::vector<V> dh(H), dc(H), dho(H), dhp(H), dxv(I);
  // The weight gradients are sums over steps of outer products; the operands of kC steps are
  // kept and summed in one go (kC fused multiply-adds per accumulator load and store).
  constexpr int kC = 8;
  std::vector<V> c_dy(kC * O), c_hn(kC * H), c_x(kC * I), c_hp(kC * H), c_da(kC * GH),
      c_dg(kC * GH);
  int nc = 0;
  auto outer = [](V* acc, const V* a, int64_t na, const V* b, int64_t nbv, int n) {
    for (int64_t r = 0; r < na; ++r) {
      for (int64_t col = 0; col < nbv; ++col) {
        V sum = acc[r * nbv + col];
        for (int c = 0; c < n; ++c) sum += a[c * na + r] * b[c * nbv + col];
        acc[r * nbv + col] = sum;
      }
    }
  };
  auto colsum = [](V* acc, const V* a, int64_t na, int n) {
    for (int64_t r = 0; r < na; ++r) {
      V sum = acc[r];
      for (int c = 0; c < n; ++c) sum += a[c * na + r];
      acc[r] = sum;
    }
  };
  auto flush = [&]() {
    colsum(acc_bo.data(), c_dy.data(), O, nc);
    outer(acc_wo.data(), c_dy.data(), O, c_hn.data(), H, nc);
    colsum(acc_bhh.data(), c_dg.data(), GH, nc);
    outer(acc_whh.data(), c_dg.data(), GH, c_hp.data(), H, nc);
    if (!m.proj) {
      colsum(acc_bih.data(), c_da.data(), GH, nc);
      outer(acc_wih.data(), c_da.data(), GH, c_x.data(), I, nc);
    }
    nc = 0;
  };
  for (int64_t q = 0; q < Q; ++q) {
    const int64_t b0 = q * L, nb = B - b0 < L ? B - b0 : L;
    for (int64_t j = 0; j < H; ++j) dh[j] = dc[j] = V{};
    if (dh_last) gather(dh_last + b0 * H, H, nb, H, dh.data());
    gather(h_last + b0 * H, H, nb, H, hn.data());
    if (CELL == kLstm && dc_last) gather(dc_last + b0 * H, H, nb, H, dc.data());
    for (int64_t t = TT - 1; t >= 0; --t) {
      const T* s = saved + (q * TT + t) * S * H * L;
      V* dyv = c_dy.data() + nc * O;
      V* hp = c_hp.data() + nc * H;
      V* da = c_da.data() + nc * GH;
      V* dg = c_dg.data() + nc * GH;
      for (int64_t j = 0; j < H; ++j) c_hn[nc * H + j] = hn[j];
      gather(dy + (b0 * TT + t) * O, TT * O, nb, O, dyv);
      for (int64_t j = 0; j < H; ++j) dho[j] = V{};
      for (int64_t o = 0; o < O; ++o) {
        const V d = dyv[o];
        const T* w = m.w_out + o * H;
        for (int64_t j = 0; j < H; ++j) dho[j] += w[j] * d;
      }
      if (!m.proj) gather(m.x + (b0 * TT + t) * I, TT * I, nb, I, c_x.data() + nc * I);
      for (int64_t j = 0; j < H; ++j) {
        V d = dho[j] + dh[j];
        if (CELL == kRnn) {
          V hn = vload<V>(s + (H + j) * L);
          hp[j] = vload<V>(s + j * L);
          da[j] = d * (1 - hn * hn);
          dg[j] = da[j];
          dhp[j] = V{};
        } else if (CELL == kLstm) {
          V ig = vload<V>(s + j * L), fg = vload<V>(s + (H + j) * L);
          V gg = vload<V>(s + (2 * H + j) * L), og = vload<V>(s + (3 * H + j) * L);
          V cp = vload<V>(s + (4 * H + j) * L), tc = vload<V>(s + (6 * H + j) * L);
          hp[j] = vload<V>(s + (5 * H + j) * L);
          V dcell = dc[j] + d * og * (1 - tc * tc);
          da[j] = dcell * gg * ig * (1 - ig);
          da[H + j] = dcell * cp * fg * (1 - fg);
          da[2 * H + j] = dcell * ig * (1 - gg * gg);
          da[3 * H + j] = d * tc * og * (1 - og);
          for (int g = 0; g < 4; ++g) dg[g * H + j] = da[g * H + j];
          dc[j] = dcell * fg;
          dhp[j] = V{};
        } else {
          V r = vload<V>(s + j * L), z = vload<V>(s + (H + j) * L);
          V n = vload<V>(s + (2 * H + j) * L), ghn = vload<V>(s + (3 * H + j) * L);
          hp[j] = vload<V>(s + (4 * H + j) * L);
          V dan = d * (1 - z) * (1 - n * n);
          V daz = d * (hp[j] - n) * z * (1 - z);
          V dar = dan * ghn * r * (1 - r);
          da[j] = dg[j] = dar;
          da[H + j] = dg[H + j] = daz;
          da[2 * H + j] = dan;
          dg[2 * H + j] = dan * r;
          dhp[j] = d * z;
        }
      }
      for (int64_t j = 0; j < GH; ++j) {
        const V gj = dg[j];
        const T* u = m.w_hh + j * H;
        for (int64_t i = 0; i < H; ++i) dhp[i] += u[i] * gj;
      }
      for (int64_t j = 0; j < H; ++j) {
        dh[j] = dhp[j];
        hn[j] = hp[j];
      }
      if (dx && m.proj) {
        scatter(dx + (b0 * TT + t) * I, TT * I, nb, I, da);
      } else if (dx) {
        for (int64_t i = 0; i < I; ++i) dxv[i] = V{};
        for (int64_t j = 0; j < GH; ++j) {
          const T* w = m.w_ih + j * I;
          for (int64_t i = 0; i < I; ++i) dxv[i] += w[i] * da[j];
        }
        scatter(dx + (b0 * TT + t) * I, TT * I, nb, I, dxv.data());
      }
      if (++nc == kC) flush();
    }
    flush();
    scatter(dh0 + b0 * H, H, nb, H, dh.data());
    if (CELL == kLstm) scatter(dc0 + b0 * H, H, nb, H, dc.data());
  }
  auto reduce = [](const V& v) {
    T sum = 0;
    for (int l = 0; l < L; ++l) sum += v[l];
    return sum;
  };
  for (int64_t o = 0; o < O; ++o) {
    db_out[o] = reduce(acc_bo[o]);
    for (int64_t j = 0; j < H; ++j) dw_out[o * H + j] = reduce(acc_wo[o * H + j]);
  }
  for (int64_t j = 0; j < GH; ++j) {
    db_hh[j] = reduce(acc_bhh[j]);
    if (!m.proj) {
      db_ih[j] = reduce(acc_bih[j]);
      for (int64_t i = 0; i < I; ++i) dw_ih[j * I + i] = reduce(acc_wih[j * I + i]);
    }
    for (int64_t i = 0; i < H; ++i) dw_hh[j * H + i] = reduce(acc_whh[j * H + i]);
  }
}

}  // namespace nrfused
