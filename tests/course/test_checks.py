"""Unit tests of coursework.checks: right answers pass quietly, wrong ones are diagnosed."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule
from coursework import checks, problems
from coursework.checks import CheckFailure


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckFailure) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, AssertionError)
    return str(info.value)


# ----------------------------------------------------------------------------- machinery


def test_assert_matches_says_expected_and_got():
    msg = failure(checks.assert_matches, [1.0, 2.5], [1.0, 2.0], what="x.grad")
    assert "x.grad" in msg and "expected" in msg and "got" in msg and "2.5" in msg
    assert "largest difference 0.5" in msg


def test_assert_matches_shape_and_none():
    assert "wrong shape" in failure(checks.assert_matches, np.ones((5, 1)), np.ones((3, 5)), what="G")
    assert "None" in failure(checks.assert_matches, None, [1.0], what="a.grad")
    assert "nan" in failure(checks.assert_matches, [np.nan], [1.0], what="v")


def test_assert_matches_accepts_tensors_of_both_libraries():
    import torch
    checks.assert_matches(chainrule.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0]),
                          what="t", rtol=1e-6)
    checks.assert_matches(torch.tensor([1.0, 2.0], requires_grad=True), np.array([1.0, 2.0]), what="t")


def test_checks_return_none_and_print_nothing(capsys):
    def right(x, y, z):
        a = x * y
        return (2 * a + z) * y, (2 * a + z) * x, a
    assert checks.check_hand_gradients(right, [2.0, 1.0], [1.0, 3.0], [5.0, 2.0]) is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_not_implemented_is_reported_as_unanswered():
    def stub(*args):
        raise NotImplementedError()
    assert "not answered yet" in failure(checks.check_dL_dw_by_hand, stub, 0.9472, 10.0, 5.0)


# ----------------------------------------------------------------------------- lesson 1


def test_lesson1_one_path_only_is_diagnosed():
    def one_path(x, y, z):
        a = x * y
        return y * (a + z), x * (a + z), a
    msg = failure(checks.check_hand_gradients, one_path, [2.0, 1.0], [1.0, 3.0], [5.0, 2.0])
    assert "Diagnosis" in msg and "path" in msg


def test_lesson1_unbroadcast_mean_is_diagnosed():
    def mean_rule(grad, shape):
        return grad.mean(axis=0)
    msg = failure(checks.check_unbroadcast, mean_rule, (4, 3), (3,))
    assert "averaged" in msg


def test_lesson1_retain_grad_forgotten():
    data = problems.lesson1_exercise_leaves()
    u = chainrule.tensor(data["u"], requires_grad=True)
    v = chainrule.tensor(data["v"], requires_grad=True)
    m = u * v
    n = m + v ** 2
    n.backward(chainrule.ones_like(n))
    assert "retain_grad" in failure(checks.check_retained_graph, u, v, m)


def test_lesson1_retain_grad_not_answered():
    """The released cell sets u = v = m = n = None before the student's code."""
    assert "not answered yet" in failure(checks.check_retained_graph, None, None, None)


# ----------------------------------------------------------------------------- lesson 2


def test_lesson2_seed_of_wrong_shape_is_diagnosed():
    def wrong_seed(weights):
        x = chainrule.tensor([2.0, 1.0], requires_grad=True)
        b = x * 2
        b.backward(gradient=chainrule.tensor([weights.tolist()]))  # shape (1, 2), not (2,)
        return x.grad, x.grad, x.grad
    msg = failure(checks.check_weighted_gradients, wrong_seed, [3.0, -1.0])
    assert "seed of the wrong shape" in msg


def test_lesson2_implicit_seed_is_diagnosed():
    def no_seed(weights):
        x = chainrule.tensor([2.0, 1.0], requires_grad=True)
        (x * 2).backward()
    assert "needs a seed" in failure(checks.check_weighted_gradients, no_seed, [3.0, -1.0])


def test_lesson2_retain_graph_forgotten_is_diagnosed():
    def rows_without_retain(f, x):
        out = f(x)
        rows = []
        for i in range(out.shape[0]):
            seed = chainrule.tensor(np.eye(out.shape[0])[i], dtype=out.dtype)
            (row,) = chainrule.autograd.grad(out, x, grad_outputs=seed)
            rows.append(row.numpy())
        return np.stack(rows)
    msg = failure(checks.check_jacobian_rows, rows_without_retain, "b = x.exp() * x.sum()", [0.1, 0.2, 0.3])
    assert "retain_graph forgotten" in msg


def test_lesson2_transposed_jacobian_is_diagnosed():
    assert "TRANSPOSE" in failure(checks.check_jacobian_by_hand, lambda a, b: [[b, 2 * a], [a, 3.0]], [2.0, 1.0])


# ----------------------------------------------------------------------------- lesson 3


def test_lesson3_half_of_dL_dw_names_both_slips_that_give_it():
    """One use of w counted, or the 2 of the square forgotten: the same value, so both are named."""
    once = lambda w, x, y: 2 * (w * w * x - y) * w * x  # noqa: E731
    no_square_factor = lambda w, x, y: (w * w * x - y) * (w * x + w * x)  # noqa: E731
    for answer in (once, no_square_factor):
        message = failure(checks.check_dL_dw_by_hand, answer, 0.9472, 10.0, 5.0)
        assert "reused layer counted once" in message and "factor 2 of the square" in message


def test_lesson3_both_factors_of_2_missing():
    neither = lambda w, x, y: (w * w * x - y) * w * x  # noqa: E731
    assert "a quarter of the right value" in failure(checks.check_dL_dw_by_hand, neither, 0.9472, 10.0, 5.0)


def test_lesson3_hand_formula_matches_course_brief():
    checks.check_dL_dw_by_hand(lambda w, x, y: 4 * (w * w * x - y) * w * x, 0.9472, 10.0, 5.0)
    assert abs(4 * (0.9472 ** 2 * 10 - 5) * 0.9472 * 10 - 150.48) < 0.01


def test_lesson3_manual_backward_overwriting_instead_of_adding():
    def overwrite(W, x, y, n_uses):
        inputs, h = [], x
        for _ in range(n_uses):
            inputs.append(h)
            h = W @ h
        g = 2 * (h - y)
        grad = None
        for h_in in reversed(inputs):
            grad = np.outer(g, h_in) if grad is None else grad  # keeps only the last use
            g = W.T @ g
        return grad
    msg = failure(checks.check_reused_linear_grad, overwrite, [[0.5, -0.2], [0.1, 0.9]], [1.0, 2.0],
                  [0.0, 1.0], n_uses=2)
    assert "reused layer counted once" in msg


def test_lesson3_accumulated_across_calls():
    layer = {}

    def leaky(W, h0, target, steps):
        if "l" not in layer:
            layer["l"] = chainrule.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
            with chainrule.no_grad():
                layer["l"].weight.copy_(chainrule.tensor(W, dtype=chainrule.float64))
        h = chainrule.tensor(h0, dtype=chainrule.float64)
        for _ in range(steps):
            h = layer["l"](h).tanh()
        chainrule.nn.MSELoss()(h, chainrule.tensor(target, dtype=chainrule.float64)).backward()
        return layer["l"].weight.grad
    msg = failure(checks.check_unrolled_grad, leaky, seed=7, steps=6, k=2, calls=2)
    assert "accumulated across calls" in msg


# ----------------------------------------------------------------------------- lesson 4


def _unanswered(*args):
    raise NotImplementedError()


def _per_sample_np(x, W1, W2):
    s = 1 / (1 + np.exp(-(x @ W1.T)))
    return W2 * s * (1 - s) * x, s


def test_lesson4_right_answers_pass():
    checks.check_per_sample_by_hand(_per_sample_np, n=6)
    w = problems.lesson4_weights()
    x = problems.lesson4_features()
    checks.check_per_sample_matrices(lambda x: _per_sample_np(x, w["0.weight"], w["2.weight"]))
    checks.check_linear_per_sample(lambda a, d: d[:, :, None] * a[:, None, :], n=4, n_in=3, n_out=2)


def test_lesson4_summed_over_batch_is_diagnosed():
    w = problems.lesson4_weights()
    x = problems.lesson4_features()
    G1, G2 = _per_sample_np(x, w["0.weight"], w["2.weight"])
    msg = failure(checks.check_per_sample_rows, G1.sum(0).reshape(5, 1), G2, x)
    assert "summed over the batch" in msg
    msg = failure(checks.check_per_sample_rows, np.tile(G1.sum(0), (len(x), 1)), G2, x)
    assert "summed over the batch" in msg
    msg = failure(checks.check_per_sample_rows, G1, np.tile(G2.mean(0), (len(x), 1)), x)
    assert "Diagnosis" not in msg or "averaged" in msg  # a constant mean row is not the sum
    assert "not reset between samples" in failure(checks.check_per_sample_rows, np.cumsum(G1, 0), G2, x)
    assert "divided by the batch size" in failure(checks.check_per_sample_rows, G1 / len(x), G2, x)
    assert "not answered yet" in failure(checks.check_per_sample_matrices, _unanswered)
    msg = failure(checks.check_linear_per_sample, lambda a, d: d.T @ a, n=4, n_in=3, n_out=2)
    assert "summed over the batch" in msg


def test_lesson4_grads_accumulated_across_steps_is_diagnosed():
    def no_zeroing(steps, lr):
        model = chainrule.nn.Sequential(chainrule.nn.Linear(1, 5, bias=False), chainrule.nn.Sigmoid(),
                                        chainrule.nn.Linear(5, 1, bias=False)).double()
        with chainrule.no_grad():
            for name, p in model.named_parameters():
                p.copy_(chainrule.tensor(problems.lesson4_weights()[name], dtype=chainrule.float64))
        X = chainrule.tensor(problems.lesson4_features(), dtype=chainrule.float64)
        Y = chainrule.tensor(problems.lesson4_targets(problems.lesson4_features()), dtype=chainrule.float64)
        for _ in range(steps):
            chainrule.nn.MSELoss()(model(X), Y).backward()
            with chainrule.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
        return dict(model.named_parameters())
    assert "accumulated across steps" in failure(checks.check_training, no_zeroing, steps=5, lr=0.5)


def _matvec_rule(W, xs, batch_dim):
    return (xs @ W.T, 0) if batch_dim == 0 else (W @ xs, 1)


def test_lesson4_batching_rules_that_are_right_pass():
    def as_columns(W, xs, batch_dim):
        return W @ (xs.T if batch_dim == 0 else xs), 1

    for rule in (_matvec_rule, as_columns):
        checks.check_matvec_batch_rule(rule, n=4, n_in=3, n_out=2)
        checks.check_matvec_batch_rule(rule, n=7, n_in=5, n_out=5, seed=2)


def test_lesson4_batching_rule_slips_are_diagnosed():
    def by_w_not_transposed(W, xs, batch_dim):
        return (xs if batch_dim == 0 else xs.T) @ W, 0

    def wrong_axis_returned(W, xs, batch_dim):
        ys, axis = _matvec_rule(W, xs, batch_dim)
        return ys, 1 - axis

    def summed(W, xs, batch_dim):
        return W @ xs.sum(batch_dim), 0

    def in_torch(W, xs, batch_dim):
        import torch
        return torch.tensor(_matvec_rule(W, xs, batch_dim)[0].numpy()), 0

    assert "Wᵀ x, not W x" in failure(checks.check_matvec_batch_rule, by_w_not_transposed, n=7, n_in=5, n_out=5)
    assert "batch axis you returned" in failure(checks.check_matvec_batch_rule, wrong_axis_returned)
    assert "batch axis was contracted" in failure(checks.check_matvec_batch_rule, summed)
    assert "PyTorch tensor" in failure(checks.check_matvec_batch_rule, in_torch)
    assert "not answered yet" in failure(checks.check_matvec_batch_rule, _unanswered)


def test_lesson4_batching_rule_runs_inside_chainrule_vmap_and_its_backward():
    calls = []

    def counting(W, xs, batch_dim):
        calls.append((tuple(W.shape), tuple(xs.shape), batch_dim))
        return _matvec_rule(W, xs, batch_dim)

    checks.check_matvec_batch_rule(counting, n=4, n_in=3, n_out=2)
    # twice directly, once under vmap, then the forward (W) and the backward (W.T) of vmap(grad)
    assert calls[2:] == [((2, 3), (4, 3), 0), ((2, 3), (4, 3), 0), ((3, 2), (4, 2), 0)]


# ----------------------------------------------------------------------------- lesson 5


def _right_loop(losses, params):
    out = []
    for i, L in enumerate(losses):
        g = chainrule.autograd.grad(L, params, retain_graph=i < len(losses) - 1, allow_unused=True)
        out.append(tuple(chainrule.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)))
    return out


def test_lesson5_right_loop_passes_every_check():
    checks.check_per_term_grads(_right_loop)
    checks.check_grad_untouched(_right_loop)
    checks.check_graph_freed(_right_loop)


def test_lesson5_retain_graph_forgotten_is_diagnosed():
    def no_retain(losses, params):
        return [chainrule.autograd.grad(L, params, allow_unused=True) for L in losses]
    assert "retain_graph forgotten" in failure(checks.check_per_term_grads, no_retain)


def test_lesson5_grad_not_reset_is_diagnosed():
    def no_reset(losses, params):
        out = []
        for i, L in enumerate(losses):
            L.backward(retain_graph=i < len(losses) - 1)
            out.append(tuple(chainrule.zeros_like(p) if p.grad is None else p.grad.clone() for p in params))
        return out
    assert ".grad not reset between loss terms" in failure(checks.check_per_term_grads, no_reset)
    msg = failure(checks.check_term_grads_by_hand, lambda x: (2 * x, 2 * x + 1 / x.size, 4 * x + 1 / x.size + 2 * x.sum()),
                  problems.lesson5_x())
    assert ".grad not reset" in msg


def test_lesson5_retaining_the_last_term_is_flagged():
    def retain_all(losses, params):
        return [tuple(chainrule.zeros_like(p) if g is None else g for g, p in
                      zip(chainrule.autograd.grad(L, params, retain_graph=True, allow_unused=True), params))
                for L in losses]
    assert "still alive" in failure(checks.check_graph_freed, retain_all)


def test_lesson5_balance_step_reference_is_consistent():
    ref = checks.torch_balance_step(1.0, 1.0)
    assert len(ref["mean_abs"]) == 3 and all(m > 0 for m in ref["mean_abs"])
    assert ref["alpha"] == pytest.approx(0.9 + 0.1 * ref["max_abs_interior"] / ref["mean_abs"][1])
    mixed = checks.torch_balance_step(1.0, 1.0, mix=True)
    assert mixed["alpha"] != pytest.approx(ref["alpha"])
