"""The numbers behind the widgets, checked against PyTorch autograd."""

import numpy as np
import pytest
import torch

from coursework import problems
from coursework import widget_math as wm


def test_lesson1_forward_and_brief_numbers():
    lv = problems.lesson1_leaves()
    f = wm.lesson1_forward(**lv)
    np.testing.assert_allclose(f["a"], [4, 7])
    t = wm.lesson1_torch(**lv)
    np.testing.assert_allclose(t["b"].detach().numpy(), f["b"])
    np.testing.assert_allclose(t["x"].grad.numpy(), [1, 1])
    np.testing.assert_allclose(t["y"].grad.numpy(), [2, 2])
    np.testing.assert_allclose(t["z"].grad.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(t["a"].grad.numpy(), [1, 1])
    assert wm.lesson1_torch(**lv, retain_a=False)["a"].retains_grad is False


@pytest.mark.parametrize("v", [[1, 1], [2, 2], [1, 0], [0, 1], [0.3, -1.7]])
def test_lesson2_vjp_matches_torch_both_ways(v):
    lv = problems.lesson1_leaves()
    by_hand = wm.lesson2_vjp(v)
    seeded = wm.lesson1_torch(**lv, seed=v)
    summed = wm.lesson1_torch(**lv, seed=v, weighted_sum=True)
    for k in "xyza":
        np.testing.assert_allclose(seeded[k].grad.numpy(), by_hand[k])
        np.testing.assert_allclose(summed[k].grad.numpy(), by_hand[k])
    assert wm.lesson2_weighted_sum(**lv, v=v) == pytest.approx(float(summed["s"].detach()))


def test_lesson2_one_hot_rows_are_jacobian_rows():
    lv = {k: torch.tensor(v, requires_grad=True) for k, v in problems.lesson1_leaves().items()}

    def b(x, y, z):
        return x + 2 * y + z / 2

    jac = torch.autograd.functional.jacobian(b, (lv["x"], lv["y"], lv["z"]))
    J = wm.lesson2_jacobians()
    for i in range(2):
        e = np.eye(2)[i]
        assert wm.lesson2_one_hot_row(e) == i
        g = wm.lesson2_vjp(e)
        for j, k in enumerate("xyz"):
            np.testing.assert_allclose(jac[j].numpy(), J[k])
            np.testing.assert_allclose(g[k], J[k][i])
    assert wm.lesson2_one_hot_row([1, 1]) is None
    assert wm.lesson2_one_hot_row([2, 0]) is None
    np.testing.assert_allclose(wm.lesson2_vjp([2, 2])["x"], 2 * wm.lesson2_vjp([1, 1])["x"])


def test_lesson3_brief_numbers():
    r = wm.lesson3_autograd(0.9472)
    assert r["out"] == pytest.approx(8.9717, abs=2e-3)
    assert r["grad"] == pytest.approx(150.48, abs=0.02)
    assert r["grad"] == pytest.approx(float(wm.lesson3_grad_formula(0.9472)), abs=1e-3)


@pytest.mark.parametrize("w", [-1.2, -0.5, 0.0, 0.3, 0.9472, 1.25])
def test_lesson3_autograd_formula_contributions(w):
    layer = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        layer.weight.fill_(w)
    loss = torch.nn.functional.mse_loss(layer(layer(torch.tensor([[10.0]], dtype=torch.float64))),
                                        torch.tensor([[5.0]], dtype=torch.float64))
    loss.backward()
    ref = layer.weight.grad.item()
    assert float(wm.lesson3_grad_formula(w)) == pytest.approx(ref, rel=1e-10, abs=1e-10)
    assert float(wm.lesson3_loss(w)) == pytest.approx(loss.item(), rel=1e-12)
    r = wm.lesson3_autograd(w)  # float32
    assert r["grad"] == pytest.approx(ref, rel=1e-4, abs=1e-3)
    assert sum(r["contributions"]) == pytest.approx(r["grad"], rel=1e-5, abs=1e-4)
    np.testing.assert_allclose(r["contributions"], wm.lesson3_use_contributions(w), rtol=1e-4, atol=1e-3)
    ws, ls = wm.lesson3_tangent(w, 0.1, 3)
    assert ls[1] == pytest.approx(float(wm.lesson3_loss(w)))
    assert (ls[2] - ls[0]) / (ws[2] - ws[0]) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_lesson4_per_sample_matches_vmap_and_batch_grad():
    weights, X = problems.lesson4_weights(), problems.lesson4_features()
    ps = wm.lesson4_per_sample_grads(weights, X)
    assert ps["0.weight"].shape == (1000, 5) and ps["2.weight"].shape == (1000, 5)

    params = {k: torch.tensor(v) for k, v in weights.items()}

    def out(p, x):
        return (torch.sigmoid(x @ p["0.weight"].T) @ p["2.weight"].T).sum()

    ref = torch.func.vmap(torch.func.grad(out), in_dims=(None, 0))(params, torch.tensor(X).unsqueeze(1))
    for k in ps:
        np.testing.assert_allclose(ps[k], ref[k].reshape(1000, -1).numpy(), rtol=1e-10, atol=1e-14)
    summary = wm.lesson4_batch_summary(ps)
    grads = wm.lesson4_torch_batch_grads(weights, X)
    for k in ps:
        np.testing.assert_allclose(summary[k]["sum"], grads[k], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(summary[k]["mean"] * 1000, grads[k], rtol=1e-10, atol=1e-12)


def test_lesson5_term_grads_way1_equals_way2_and_combination():
    res = wm.lesson5_term_grads()
    net, terms = wm.lesson5_terms()
    params = list(net.parameters())
    for i, L in enumerate(terms):  # Way 2: backward, copy aside, reset to None
        L.backward(retain_graph=True)
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        np.testing.assert_allclose(res["grads"][i], g.numpy(), rtol=1e-10, atol=1e-12)
        assert res["losses"][i] == pytest.approx(L.item())
        for p in params:
            p.grad = None
    alpha, beta = 3.0, 0.2
    total = terms[0] + alpha * terms[1] + beta * terms[2]
    total.backward()
    g = torch.cat([p.grad.reshape(-1) for p in params]).numpy()
    c = wm.lesson5_combine(res["grads"], alpha, beta)
    np.testing.assert_allclose(c["combined"], g, rtol=1e-10, atol=1e-12)
    assert c["combined_norm"] == pytest.approx(np.linalg.norm(g))
    assert c["weighted_mean_abs"][1] == pytest.approx(alpha * c["mean_abs"][1])
    assert sum(c["share"]) == pytest.approx(1.0)
    for i in range(3):
        gi = res["grads"][i]
        assert c["cos_to_combined"][i] == pytest.approx(gi @ g / np.linalg.norm(gi) / np.linalg.norm(g))


def test_lesson5_agrees_with_the_lesson_checks_reference():
    checks = pytest.importorskip("coursework.checks")
    if not hasattr(checks, "torch_balance_step"):
        pytest.skip("coursework.checks has no torch_balance_step")
    try:
        ref = checks.torch_balance_step(1.0, 1.0)
    except RuntimeError as e:  # reported to the lessons' author: the output bias is unused by two terms
        pytest.fail(f"coursework.checks.torch_balance_step fails: {str(e)[:90]}")
    res = wm.lesson5_term_grads()
    c = wm.lesson5_combine(res["grads"], 1.0, 1.0)
    np.testing.assert_allclose(res["losses"], ref["losses"], rtol=1e-10)
    np.testing.assert_allclose(c["mean_abs"], ref["mean_abs"], rtol=1e-10)
    ah, bh = wm.lesson5_balanced_weights(res["grads"])
    eta = problems.LESSON5_ETA
    assert ref["alpha"] == pytest.approx((1 - eta) + eta * ah)
    assert ref["beta"] == pytest.approx((1 - eta) + eta * bh)


def test_lesson5_training_reduces_the_loss():
    h = wm.lesson5_train(1.0, 1.0, steps=40)
    first, last = sum(h["losses"][0]), sum(h["losses"][-1])
    assert last < first / 2
    u = wm.lesson5_solution(h["params"], np.linspace(0, 1, 5))
    assert u.shape == (5,) and np.all(np.isfinite(u))


def test_lesson5_solution_matches_the_network():
    net, _ = wm.lesson5_terms()
    params = {k: p.detach().numpy() for k, p in net.named_parameters()}
    xs = np.linspace(0, 1, 7)
    ref = net(torch.tensor(xs).reshape(-1, 1)).detach().numpy().reshape(-1)
    np.testing.assert_allclose(wm.lesson5_solution(params, xs), ref, rtol=1e-12)
