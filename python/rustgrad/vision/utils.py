# torchvision.utils: make_grid tiles a batch of images into one image; save_image writes that
# grid as a PNG (or any format Pillow knows).
import math

import rustgrad as _rg

__all__ = ["make_grid", "save_image"]


@_rg.no_grad()
def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """A (C, H', W') grid of a (B, C, H, W) batch or a list of (C, H, W) images, nrow per row,
    `padding` pixels of pad_value around each; one-channel images become three-channel."""
    if not _rg.is_tensor(tensor):
        if isinstance(tensor, list):
            for t in tensor:
                if not _rg.is_tensor(t):
                    raise TypeError(f"tensor or list of tensors expected, got a list containing {type(t)}")
        else:
            raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
    if isinstance(tensor, list):
        tensor = _rg.stack(tensor, dim=0)
    if tensor.dim() == 2:  # one H x W image
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 3:  # one image
        if tensor.size(0) == 1:
            tensor = _rg.cat((tensor, tensor, tensor), 0)
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 4 and tensor.size(1) == 1:
        tensor = _rg.cat((tensor, tensor, tensor), 1)

    if normalize is True:
        tensor = tensor.clone()  # the caller's images stay untouched
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")

        def norm_range(t):
            low, high = value_range if value_range is not None else (float(t.min()), float(t.max()))
            t.clamp_(min=low, max=high)
            t.sub_(low).div_(max(high - low, 1e-5))

        if scale_each is True:
            for t in tensor:  # each image by its own range
                norm_range(t)
        else:
            norm_range(tensor)

    if not isinstance(tensor, _rg.Tensor):
        raise TypeError("tensor should be of type torch.Tensor")
    if tensor.size(0) == 1:
        return tensor.squeeze(0)

    nmaps = tensor.size(0)
    xmaps = min(nrow, nmaps)
    ymaps = int(math.ceil(float(nmaps) / xmaps))
    height, width = int(tensor.size(2) + padding), int(tensor.size(3) + padding)
    grid = tensor.new_full((tensor.size(1), height * ymaps + padding, width * xmaps + padding), pad_value)
    k = 0
    for y in range(ymaps):
        for x in range(xmaps):
            if k >= nmaps:
                break
            grid.narrow(1, y * height + padding, height - padding).narrow(
                2, x * width + padding, width - padding).copy_(tensor[k])
            k += 1
    return grid


@_rg.no_grad()
def save_image(tensor, fp, format=None, **kwargs):
    """Write an image (or a batch, through make_grid with **kwargs) with values in [0, 1] to fp."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("save_image needs Pillow to encode the image, and Pillow is not installed: "
                          "pip install Pillow") from None
    grid = make_grid(tensor, **kwargs)
    # + 0.5 rounds to the nearest integer once the cast truncates.
    ndarr = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(_rg.uint8).numpy()
    Image.fromarray(ndarr).save(fp, format=format)
