# In the style of the "Autograd mechanics" note's "Inference Mode": what is made inside
# inference_mode records nothing and is an inference tensor (views of one are too); such a
# tensor may take part in recorded computations that do not save it, but autograd refuses to
# save it for backward, to update it in place or to let it require grad outside the mode; a
# clone is a normal tensor again. Also inference_mode as a decorator and inference_mode(False).
import torch

model = torch.nn.Linear(3, 2)
batch = torch.randn(4, 3)


@torch.inference_mode()
def predict(inputs):
    return model(inputs).argmax(dim=1)


print(predict(batch), predict(batch).is_inference(), torch.is_inference_mode_enabled())
with torch.inference_mode():
    scores = model(batch)
    print(torch.is_inference_mode_enabled(), torch.is_grad_enabled())
    print(scores.requires_grad, scores.is_inference(), scores[0].is_inference())
    with torch.inference_mode(False):
        print(torch.is_inference_mode_enabled(), torch.is_grad_enabled(),
              torch.zeros(1).is_inference())
print(scores.detach().is_inference(), scores.sum().is_inference(), model.weight.is_inference())

w = torch.tensor([1.0, -1.0], requires_grad=True)
shift = scores[0]
print((w + shift).requires_grad)  # an addition saves nothing
with torch.inference_mode():
    spare = torch.ones(2)  # PyTorch refuses an in-place update of it after making it
for attempt in (lambda: w * shift, lambda: spare.mul_(2), lambda: shift.requires_grad_()):
    try:
        attempt()
    except RuntimeError as error:
        print(error)
normal = shift.clone()
print(normal.is_inference())
(w * normal).sum().backward()
print(w.grad)
