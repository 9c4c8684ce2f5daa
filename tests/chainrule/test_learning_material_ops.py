"""The ops and APIs the learning material needs (tests/corpus), against PyTorch: values,
gradients (and gradcheck), random numbers after a seed, and PyTorch's errors for bad input."""

import numpy as np
import pytest
import torch

import chainrule
from helpers import assert_same, check, check_second_order, same_error

RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- values and gradients
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_trigonometric_functions(name):
    check(lambda a: getattr(chainrule, name)(a), lambda a: getattr(torch, name)(a),
          RNG.uniform(-4, 4, (3, 4)))
    check_second_order(lambda lib, a: getattr(lib, name)(a), RNG.uniform(-4, 4, (5,)))


@pytest.mark.parametrize("name, shapes", [("dot", [(5,), (5,)]), ("mm", [(3, 4), (4, 2)]),
                                          ("mv", [(3, 4), (4,)])])
def test_products(name, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    check(lambda a, b: getattr(chainrule, name)(a, b), lambda a, b: getattr(torch, name)(a, b), *arrays)
    check(lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b), *arrays)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(dim):
    check(lambda a: a.cumsum(dim), lambda a: a.cumsum(dim), RNG.standard_normal((3, 4)))
    check(lambda a: chainrule.cumsum(a, axis=dim), lambda a: torch.cumsum(a, axis=dim),
          RNG.standard_normal((2, 5)))
    check_second_order(lambda lib, a: lib.cumsum(a, dim) ** 2, RNG.standard_normal((2, 3)))


def test_norm():
    check(chainrule.norm, torch.norm, RNG.standard_normal((3, 4)))
    check(lambda a: a.norm(), lambda a: a.norm(), RNG.standard_normal(6))


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax(name, dim):
    check(lambda a: getattr(chainrule.nn.functional, name)(a, dim),
          lambda a: getattr(torch.nn.functional, name)(a, dim), RNG.standard_normal((3, 5)) * 3)
    check_second_order(lambda lib, a: getattr(lib, name)(a, dim), RNG.standard_normal((2, 3)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_class_indices(reduction):
    target = np.array([2, 0, 1, 2])
    check(lambda a: chainrule.nn.functional.cross_entropy(a, chainrule.tensor(target), reduction=reduction),
          lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(target), reduction=reduction),
          RNG.standard_normal((4, 3)) * 2)
    check(lambda a: chainrule.nn.CrossEntropyLoss(reduction=reduction)(a, chainrule.tensor(target)),
          lambda a: torch.nn.CrossEntropyLoss(reduction=reduction)(a, torch.tensor(target)),
          RNG.standard_normal((4, 3)))


def test_cross_entropy_of_one_sample():
    check(lambda a: chainrule.nn.functional.cross_entropy(a, chainrule.tensor(1)),
          lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(1)), RNG.standard_normal(4))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(reduction):
    logits = RNG.standard_normal((3, 4)) * 30  # large logits: no overflow
    targets = RNG.uniform(0, 1, (3, 4))
    check(lambda x, t: chainrule.nn.functional.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          logits, targets)
    check(lambda x, t: chainrule.nn.BCEWithLogitsLoss(reduction=reduction)(x, t),
          lambda x, t: torch.nn.BCEWithLogitsLoss(reduction=reduction)(x, t), logits / 30, targets)


def test_remainder():
    # away from the jumps of a % b, where finite differences would straddle one
    a, b = np.array([[5.3, -7.4, 0.8, 2.2]]), np.array([2.1, 3.0, 1.5, 0.9])
    check(lambda a, b: a % b, lambda a, b: a % b, a, b)
    check(lambda a: a % 1.5, lambda a: a % 1.5, a)
    for lib in (torch, chainrule):
        assert (lib.tensor([5.0], requires_grad=True) % 2).grad_fn.name() == "RemainderBackward0"


def test_no_gradient_when_a_number_is_divided_by_a_tensor():
    def case(lib):
        b = lib.tensor([2.0, 3.0], requires_grad=True)
        (7.5 % b).sum().backward()
    same_error(case)


@pytest.mark.parametrize("case", [
    lambda lib, t: t.argmax(), lambda lib, t: t.argmax(dim=1), lambda lib, t: t.argmin(0, keepdim=True),
    lambda lib, t: t.argmax(axis=1), lambda lib, t: lib.argmax(t, 1, True),
    lambda lib, t: (t > 0).all(), lambda lib, t: (t > 0).any(dim=0), lambda lib, t: t.all(1),
    lambda lib, t: lib.equal(t, t.clone()), lambda lib, t: t.equal(t[:1]), lambda lib, t: t.sum(axis=0),
    lambda lib, t: t.mean(axis=1, keepdims=True), lambda lib, t: lib.tensor([3, 4]) % 3,
    lambda lib, t: lib.arange(6).reshape(2, 3).cumsum(axis=0), lambda lib, t: (t > 0).cumsum(1),
])
def test_reductions_and_comparisons(case):
    values = np.array([[0.5, -2.0, 3.0], [4.0, 0.0, -1.0]])
    got, expected = case(chainrule, chainrule.tensor(values)), case(torch, torch.tensor(values))
    if isinstance(expected, bool):
        assert got is expected
    else:
        assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
        assert_same(got, expected)


def test_legacy_names_of_numpy_keywords_and_sizes():
    assert chainrule.randn(size=(2, 3)).shape == (2, 3)
    assert chainrule.zeros(size=(4,)).tolist() == [0.0] * 4
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'shape'"):
        chainrule.ones(shape=(2,))


# ---------------------------------------------------------------- random numbers and points
@pytest.mark.parametrize("draw", [
    lambda lib: lib.rand(5), lambda lib: lib.rand(3, dtype=lib.float64), lambda lib: lib.randn(7),
    lambda lib: lib.randn(33, dtype=lib.float64), lambda lib: lib.nn.Linear(3, 2).weight.detach(),
    lambda lib: lib.ones(40).uniform_(-1, 2), lambda lib: lib.zeros(6).normal_(1.0, 3.0),
])
def test_random_numbers_are_pytorchs_after_the_same_seed(draw):
    torch.manual_seed(3)
    chainrule.manual_seed(3)
    # three draws in a row: the generator's state (and a cached normal sample) carries over
    for _ in range(3):
        expected, got = draw(torch), draw(chainrule)
        np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


@pytest.mark.parametrize("draw", [lambda lib: lib.randn(3, 7), lambda lib: lib.normal(2.0, 0.5, (4, 5))])
def test_float32_normal_samples_of_16_or_more_are_pytorchs_to_the_last_bit_or_so(draw):
    """PyTorch transforms these with vectorised log, cos and sin (one ulp or so from C's)."""
    torch.manual_seed(3)
    chainrule.manual_seed(3)
    for _ in range(3):
        expected, got = draw(torch), draw(chainrule)
        np.testing.assert_allclose(got.cpu().numpy(), expected.numpy(), rtol=4e-7, atol=2e-7)


@pytest.mark.parametrize("start, end, steps", [(0.0, 6.283185307179586, 25), (-3.14159, 3.14159, 2000),
                                               (0.0, 1.0, 7), (-1.0, 1.0, 1), (2.0, -2.0, 10)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linspace_points_are_pytorchs(start, end, steps, dtype):
    got = chainrule.linspace(start, end, steps, dtype=getattr(chainrule, dtype))
    expected = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
    np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


def test_default_dtype_can_be_float64():
    for lib in (torch, chainrule):
        lib.set_default_dtype(lib.float64)
        try:
            made = lib.tensor([1.5]), lib.zeros(2), lib.nn.Linear(2, 1).weight
            assert [str(t.dtype).split(".")[-1] for t in made] == ["float64"] * 3
            assert repr(lib.tensor([1.5])) == "tensor([1.5000])"
            assert repr(lib.tensor([1.5], dtype=lib.float32)) == f"tensor([1.5000], dtype={lib.__name__}.float32)"
        finally:
            lib.set_default_dtype(lib.float32)


# ---------------------------------------------------------------- PyTorch's errors
@pytest.mark.parametrize("case", [
    lambda lib: lib.dot(lib.ones(2, 2), lib.ones(2)),
    lambda lib: lib.dot(lib.ones(3), lib.ones(2)),
    lambda lib: lib.dot(lib.ones(3), lib.ones(3, dtype=lib.float64)),
    lambda lib: lib.mm(lib.ones(3), lib.ones(3, 2)),
    lambda lib: lib.mm(lib.ones(2, 3), lib.ones(3)),
    lambda lib: lib.mv(lib.ones(3), lib.ones(3)),
    lambda lib: lib.norm(lib.arange(3)),
    lambda lib: lib.argmax(lib.ones(0)),
    lambda lib: lib.softmax(lib.ones(2, 3), 2),
    lambda lib: lib.ones(2, 3).cumsum(2),
    lambda lib: lib.equal(lib.ones(2), 1),
    lambda lib: lib.nn.functional.cross_entropy(lib.ones(3, 4), lib.tensor([1, 2])),
    lambda lib: lib.nn.functional.cross_entropy(lib.ones(2, 4), lib.tensor([1, 5])),
    lambda lib: lib.nn.functional.cross_entropy(lib.ones(2, 4), lib.tensor([1.0, 2.0])),
    lambda lib: lib.nn.functional.cross_entropy(lib.ones(2, 4), lib.tensor([1, 2]), reduction="bad"),
    lambda lib: lib.nn.functional.binary_cross_entropy_with_logits(lib.ones(3), lib.ones(2)),
    lambda lib: lib.normal(0.0, -1.0, (2,)),
    lambda lib: lib.Tensor(2.5),
    lambda lib: lib.ones(2, requires_grad=True).mul_(2),
])
def test_bad_input_gets_pytorchs_error(case):
    same_error(case)


def test_a_saved_tensor_changed_in_place_is_named_as_pytorch_names_it():
    def case(lib):
        y = lib.tensor([1.0, 2.0], requires_grad=True).sigmoid()
        y.detach().zero_()
        y.sum().backward()
    same_error(case)


# ---------------------------------------------------------------- what a node saved
def test_saved_tensors_under_pytorchs_names():
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0])
        y = x.pow(2)
        assert y.grad_fn._saved_self is x and y.grad_fn._saved_exponent == 2
        e = x.exp()
        assert e.grad_fn._saved_result is not e and lib.equal(e.grad_fn._saved_result, e)
        m = x * w
        assert m.grad_fn._saved_other is w and m.grad_fn._saved_self is None
        m.sum().backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            m.grad_fn._saved_other
        with pytest.raises(AttributeError):
            (x + w).grad_fn._saved_self


# ---------------------------------------------------------------- autograd.functional
def _functional_cases(lib):
    """hessian, vhp, hvp and jvp as the torch.autograd API docs use them, float64."""
    f = lib.autograd.functional
    x = lib.tensor(RNG_FUNCTIONAL.standard_normal((2, 3)))
    pair = (lib.tensor([1.0, -2.0], dtype=lib.float64), lib.tensor([0.5, 3.0], dtype=lib.float64))
    v = lib.tensor(np.arange(6.0).reshape(2, 3) - 2)
    ones = (lib.ones(2, dtype=lib.float64), lib.tensor([2.0, -1.0], dtype=lib.float64))

    def cubes(t):
        return (t.pow(3) * t.sin()).sum()

    def mixed(a, b):
        return (a * a * b + b.exp()).sum()

    def rows(t):
        return t.exp().sum(dim=1)

    return [f.hessian(cubes, x), *f.hessian(mixed, pair)[0], *f.hessian(mixed, pair)[1],
            *f.vhp(cubes, x, v), *f.hvp(cubes, x, v), f.vhp(mixed, pair, ones)[0], *f.vhp(mixed, pair, ones)[1],
            *f.jvp(rows, x, v), *f.jvp(lambda a, b: a * b + a.tanh(), pair, ones),
            f.hessian(lambda t: t.sum() * 0 + 1.0, pair[0])]


RNG_FUNCTIONAL = np.random.default_rng(11)


def test_functional_hessian_vhp_hvp_jvp():
    state = RNG_FUNCTIONAL.bit_generator.state
    ours = _functional_cases(chainrule)
    RNG_FUNCTIONAL.bit_generator.state = state
    theirs = _functional_cases(torch)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_same(a, b)


def test_functional_hessian_of_a_non_scalar_is_refused():
    same_error(lambda lib: lib.autograd.functional.hessian(lambda t: t * 2, lib.ones(3)))
    same_error(lambda lib: lib.autograd.functional.vhp(lambda t: t * 2, lib.ones(3), lib.ones(3)))


def test_gradgradcheck_draws_its_grad_outputs_as_pytorch_does():
    results = []
    for lib in (torch, chainrule):
        lib.manual_seed(3)
        x = lib.tensor(RNG.standard_normal(4), requires_grad=True)
        y = lib.tensor(RNG.standard_normal(4), requires_grad=True)
        checked = lib.autograd.gradgradcheck(lambda a, b: (a * b.sin()).exp(), (x, y))
        results.append((checked, lib.rand(3)))
    assert results[0][0] is results[1][0] is True
    assert_same(results[1][1], results[0][1])


def test_gradgradcheck_finds_a_wrong_second_derivative():
    class WrongSecond(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return grad * 3 * x.detach() ** 2  # right first derivative, cut from the graph

    x = chainrule.tensor([0.5, -1.5], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(WrongSecond.apply, (x,))
    assert not chainrule.autograd.gradgradcheck(WrongSecond.apply, (x,), raise_exception=False)


def test_a_seed_that_requires_grad_is_part_of_the_recorded_graph():
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor([0.5, 2.0], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([3.0, -1.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(x.sin(), x, v, create_graph=True)
        grads.append(lib.autograd.grad(g.sum(), (x, v)))
    for ours, theirs in zip(grads[1], grads[0]):
        assert_same(ours, theirs)


# ---------------------------------------------------------------- anomaly detection
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on 0 / 0, inside pytest.warns
def test_anomaly_mode_stops_at_the_node_that_returned_nan():
    def case(lib):
        with lib.autograd.set_detect_anomaly(True):
            x = lib.tensor([3.0, 0.0], requires_grad=True)  # 0 / sqrt(0) is NaN
            (x.sqrt() * lib.tensor([1.0, 0.0])).sum().backward()
    with pytest.warns(UserWarning, match=r"Error detected in SqrtBackward0\. Traceback of forward call"):
        same_error(case)
    assert not chainrule.is_anomaly_enabled()


def test_anomaly_mode_shows_where_the_failing_node_was_made():
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with chainrule.autograd.detect_anomaly():
            x = chainrule.tensor([0.0, 1.0], requires_grad=True)
            y = x / x  # the forward call the warning must point at
            with pytest.raises(RuntimeError, match="'DivBackward0' returned nan values in its 1th output"):
                y.sum().backward()
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert messages[0].startswith("Anomaly Detection has been enabled.")
    assert "y = x / x  # the forward call" in messages[1]


def test_without_check_nan_anomaly_mode_lets_nan_through():
    for lib in (torch, chainrule):
        with lib.autograd.set_detect_anomaly(True, check_nan=False):
            assert lib.is_anomaly_enabled() and not lib.is_anomaly_check_nan_enabled()
            x = lib.tensor([0.0, 1.0], requires_grad=True)
            (x / x).sum().backward()
        assert not lib.is_anomaly_enabled() and lib.is_anomaly_check_nan_enabled()
        assert np.isnan(x.grad.numpy()[0])


# ---------------------------------------------------------------- saved tensor hooks
def _packing_log(lib):
    """What pack and unpack see, in order, for ops that save inputs, outputs or nothing."""
    log = []

    def pack(t):
        log.append(("pack", t.grad_fn.name() if t.grad_fn is not None else "leaf", t.tolist()))
        return t

    def unpack(t):
        log.append(("unpack", t.grad_fn.name() if t.grad_fn is not None else "leaf", t.tolist()))
        return t

    x = lib.tensor([0.5, 2.0], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([1.5, -1.0], dtype=lib.float64, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = (x * w).exp() + x.pow(3) + (x / w).sigmoid() + (x + w) + x.sin() * 2
    out.sum().backward()
    return log, x.grad, w.grad


def test_saved_tensors_hooks_see_what_pytorch_saves_in_its_order():
    (ours, gx, gw), (theirs, tx, tw) = _packing_log(chainrule), _packing_log(torch)
    assert ours == theirs
    assert_same(gx, tx)
    assert_same(gw, tw)


def test_unpacked_tensors_are_what_backward_reads():
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach() * 0 + 1, lambda t: t):
            (x * x).sum().backward()  # each factor unpacked as ones: the gradient is 1 + 1
        assert x.grad.tolist() == [2.0, 2.0]
        with lib.autograd.graph.save_on_cpu():
            y = (x * 3).exp()
        x.grad = None
        y.sum().backward()
        assert_same(x.grad, 3 * np.exp(3 * np.array([1.0, 2.0])))


@pytest.mark.parametrize("start, end, step", [(-8.0, 8.0, 0.1), (0.0, 3.0, 0.1), (0.5, 100.0, 0.37)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arange_of_floats_does_not_drift(start, end, step, dtype):
    ours = chainrule.arange(start, end, step, dtype=getattr(chainrule, dtype))
    theirs = torch.arange(start, end, step, dtype=getattr(torch, dtype))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_grad_mode_is_per_thread():
    import threading
    for lib in (torch, chainrule):
        seen = {}
        inside, done = threading.Event(), threading.Event()

        def quiet():
            with lib.no_grad():
                inside.set()
                done.wait()

        def recording():
            inside.wait()
            w = lib.ones(2, requires_grad=True)
            seen["enabled"], seen["recorded"] = lib.is_grad_enabled(), (w * 2).requires_grad
            done.set()

        threads = [threading.Thread(target=quiet), threading.Thread(target=recording)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"enabled": True, "recorded": True}, lib.__name__


def test_hooks_fire_in_pytorchs_order():
    def case(lib):
        log = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.retain_grad()
        y.grad_fn.register_prehook(lambda g: log.append("node pre-hook") or (g[0] * 10,))
        y.register_hook(lambda g: log.append("tensor hook") or g * 2)
        (y * y).sum().backward(retain_graph=True)
        log.append(y.grad.tolist())
        log.append(x.grad.tolist())
        lib.autograd.grad((y * y).sum(), y)  # y's node does not run: its pre-hook does not fire
        return log
    assert case(chainrule) == case(torch)


def test_an_unpacked_tensor_takes_the_saved_ones_place_in_the_graph():
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach(), lambda t: t):
            y = x.sin() * x
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        results.append((g.detach(), gg, y.grad_fn._saved_self.requires_grad))
    assert results[0][2] == results[1][2] is True
    assert_same(results[1][0], results[0][0])
    assert_same(results[1][1], results[0][1])


def test_module_requires_grad_freezes_and_unfreezes_parameters():
    for lib in (torch, chainrule):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Linear(3, 1))
        assert model[0].requires_grad_(False) is model[0]
        assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
        model.requires_grad_()
        assert all(p.requires_grad for p in model.parameters())


def test_sin_in_place():
    same_error(lambda lib: lib.sin_(lib.ones(3, requires_grad=True)))
    ours, theirs = chainrule.tensor([0.5, 2.0]), torch.tensor([0.5, 2.0])
    chainrule.sin_(ours)
    theirs.sin_()
    assert_same(ours, theirs)


def test_saved_tensors_hooks_see_what_a_custom_function_saves():
    def case(lib):
        log = []

        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.save_for_backward(x, None, y)
                return x ** 3 * y

            @staticmethod
            def backward(ctx, g):
                x, nothing, y = ctx.saved_tensors
                log.append((nothing, x.requires_grad))
                return g * 3 * x ** 2 * y, g * x ** 3

        a = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: log.append(("pack", t.tolist())) or t.detach(),
                                                    lambda t: log.append(("unpack", t.tolist())) or t):
            out = Cube.apply(a, b * 2)
        out.sum().backward()
        return log, a.grad.tolist(), b.grad.tolist()
    assert case(chainrule) == case(torch)


def test_inference_tensors_as_pytorch_has_them():
    def case(lib):
        w = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            made = lib.ones(2) * 3
            seen = [lib.is_inference_mode_enabled(), made.is_inference(), made[0].is_inference(),
                    (made > 1).is_inference(), made.argmax().is_inference()]
        seen += [made.detach().is_inference(), made.sum().is_inference(), (w + made).requires_grad]
        return seen
    assert case(chainrule) == case(torch)
    for attempt in (lambda lib, t: lib.ones(2, requires_grad=True) * t, lambda lib, t: t.add_(1),
                    lambda lib, t: t.requires_grad_()):
        def made(lib, attempt=attempt):
            with lib.inference_mode():
                t = lib.ones(2)
            attempt(lib, t)
        same_error(made)


def test_saved_tensors_hooks_are_per_thread():
    import threading
    for lib in (torch, chainrule):
        packed_by = []
        inside, done = threading.Event(), threading.Event()

        def hooked():
            with lib.autograd.graph.saved_tensors_hooks(lambda t: packed_by.append("hooked") or t,
                                                        lambda t: t):
                inside.set()
                done.wait()
                lib.ones(2, requires_grad=True).exp()

        def plain():
            inside.wait()
            lib.ones(2, requires_grad=True).exp()  # saved while the other thread has hooks
            done.set()

        threads = [threading.Thread(target=hooked), threading.Thread(target=plain)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert packed_by == ["hooked"], lib.__name__


def test_node_metadata_is_a_dict_kept_with_the_node():
    for lib in (torch, chainrule):
        y = lib.ones(2, requires_grad=True).exp()
        assert y.grad_fn.metadata == {}
        y.grad_fn.metadata["made by"] = "test"
        assert y.grad_fn.metadata == {"made by": "test"}
