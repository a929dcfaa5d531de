# torchvision.transforms.functional: the image operations behind the transform classes, for
# tensors ([..., C, H, W]), PIL images (when Pillow is installed) and NumPy HWC arrays, which
# stand in for PIL images where Pillow is absent (datasets then return arrays).
import numbers
import warnings
from enum import Enum

import numpy as np

import rustgrad as _rg
from rustgrad.nn import functional as _nnf

try:  # optional: everything except ToPILImage/save_image works without it
    from PIL import Image as _Image
except ImportError:
    _Image = None


class InterpolationMode(Enum):
    """Interpolation modes, named as torchvision (and Pillow) name them."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


# Pillow's integer resampling constants, accepted wherever a mode is.
_FROM_PIL_INT = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                 4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}
pil_modes_mapping = {InterpolationMode.NEAREST: 0, InterpolationMode.BILINEAR: 2, InterpolationMode.BICUBIC: 3,
                     InterpolationMode.NEAREST_EXACT: 0, InterpolationMode.BOX: 4, InterpolationMode.HAMMING: 5,
                     InterpolationMode.LANCZOS: 1}


def _interpolation_modes_from_int(i):
    return _FROM_PIL_INT[i]


def _require_pillow(what):
    if _Image is None:
        raise ImportError(f"{what} needs Pillow, which is not installed: pip install Pillow")
    return _Image


def _is_pil_image(img):
    return _Image is not None and isinstance(img, _Image.Image)


def _is_numpy(img):
    return isinstance(img, np.ndarray)


def _is_tensor(img):
    return isinstance(img, _rg.Tensor)


def _to_image(array, mode=None):
    """A uint8 HWC (or HW) array as the image a dataset returns: a PIL image with Pillow,
    the array itself without."""
    if _Image is None:
        return array
    return _Image.fromarray(array, mode=mode) if mode is not None else _Image.fromarray(array)


def _assert_image_tensor(img):
    if img.ndim < 2:
        raise TypeError("Tensor is not a torch image.")


def get_dimensions(img):
    """[channels, height, width] of a tensor, PIL image or HWC array."""
    if _is_tensor(img):
        _assert_image_tensor(img)
        channels = 1 if img.ndim == 2 else img.shape[-3]
        return [channels, img.shape[-2], img.shape[-1]]
    if _is_pil_image(img):
        width, height = img.size
        return [len(img.getbands()), height, width]
    if _is_numpy(img) and img.ndim in (2, 3):
        return [1 if img.ndim == 2 else img.shape[2], img.shape[0], img.shape[1]]
    raise TypeError(f"Unexpected type {type(img)}")


def get_image_size(img):
    """[width, height], as torchvision returns it."""
    _, h, w = get_dimensions(img)
    return [w, h]


def get_image_num_channels(img):
    return get_dimensions(img)[0]


def to_tensor(pic):
    """PIL image or HWC ndarray -> CHW tensor; uint8 data is scaled to [0, 1] in the default dtype."""
    if not (_is_pil_image(pic) or _is_numpy(pic)):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    if _is_numpy(pic) and pic.ndim not in (2, 3):
        raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
    if _is_numpy(pic):
        if pic.ndim == 2:
            pic = pic[:, :, None]
        img = _rg.from_numpy(np.ascontiguousarray(pic.transpose((2, 0, 1))))
    else:
        # Pillow's wide modes keep their integer/float type and are not scaled (as torchvision).
        nptype = {"I": np.int32, "F": np.float32}.get(pic.mode, np.uint8)
        array = np.array(pic, nptype, copy=True)
        if pic.mode == "1":
            array = 255 * array
        array = array.reshape(pic.size[1], pic.size[0], len(pic.getbands()))
        img = _rg.from_numpy(np.ascontiguousarray(array.transpose((2, 0, 1))))
    if img.dtype == _rg.uint8:
        return img.to(dtype=_rg.get_default_dtype()).div(255)
    return img


def pil_to_tensor(pic):
    """PIL image -> CHW tensor of the image's own type, unscaled."""
    if not _is_pil_image(pic):
        raise TypeError(f"pic should be PIL Image. Got {type(pic)}")
    array = np.array(pic, copy=True).reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    return _rg.tensor(array).permute((2, 0, 1))


_MAX_VALUE = {"uint8": 255, "int32": 2147483647, "int64": 9223372036854775807}


def _max_value(dtype):
    return _MAX_VALUE.get(str(dtype).split(".")[-1], 1)


def convert_image_dtype(image, dtype=_rg.float32):
    """Cast an image tensor, rescaling between the integer range [0, max] and the float range [0, 1]."""
    if not _is_tensor(image):
        raise TypeError("Input img should be Tensor Image")
    if image.dtype == dtype:
        return image
    to_float = _rg.tensor(0, dtype=dtype).is_floating_point()
    if image.is_floating_point():
        if to_float:
            return image.to(dtype)
        if (image.dtype == _rg.float32 and dtype in (_rg.int32, _rg.int64)) or (
                image.dtype == _rg.float64 and dtype == _rg.int64):
            raise RuntimeError(f"The cast from {image.dtype} to {dtype} cannot be performed safely.")
        # max + 1 - eps spreads [0, 1] evenly over the integer range; only 1.0 maps to max.
        return image.mul(float(_max_value(dtype)) + 1.0 - 1e-3).to(dtype)
    input_max = float(_max_value(image.dtype))
    if to_float:
        return image.to(dtype) / input_max
    output_max = float(_max_value(dtype))
    if input_max > output_max:
        factor = int((input_max + 1) // (output_max + 1))
        return _rg.div(image, factor, rounding_mode="floor").to(dtype)
    factor = int((output_max + 1) // (input_max + 1))
    return image.to(dtype) * factor


def to_pil_image(pic, mode=None):
    """CHW tensor or HWC ndarray -> PIL image; floats are taken to lie in [0, 1]."""
    Image = _require_pillow("to_pil_image")
    if _is_tensor(pic):
        if pic.ndim == 3:
            pic = pic.permute((1, 2, 0))
        pic = pic.detach().numpy()
    elif not _is_numpy(pic):
        raise TypeError(f"pic should be Tensor or ndarray. Got {type(pic)}.")
    if pic.ndim == 2:
        pic = np.expand_dims(pic, 2)
    if pic.ndim != 3:
        raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
    if pic.shape[-1] > 4:
        raise ValueError(f"pic should not have > 4 channels. Got {pic.shape[-1]} channels.")
    npimg = pic
    if np.issubdtype(npimg.dtype, np.floating) and mode != "F":
        npimg = (npimg * 255).astype(np.uint8)
    channels = npimg.shape[2]
    if channels == 1:
        npimg = npimg[:, :, 0]
        expected = {np.dtype(np.uint8): "L", np.dtype(np.int16): "I;16", np.dtype(np.int32): "I",
                    np.dtype(np.float32): "F"}.get(npimg.dtype)
        if mode is not None and mode != expected:
            raise ValueError(f"Incorrect mode ({mode}) supplied for input type {np.dtype}. Should be {expected}")
        mode = expected
    else:
        permitted, default = {2: (["LA"], "LA"), 4: (["RGBA", "CMYK", "RGBX"], "RGBA"),
                              3: (["RGB", "YCbCr", "HSV"], "RGB")}[channels]
        if mode is not None and mode not in permitted:
            kind = "2D" if channels == 2 else f"{channels}D"
            raise ValueError(f"Only modes {permitted} are supported for {kind} inputs")
        if mode is None and npimg.dtype == np.uint8:
            mode = default
    if mode is None:
        raise TypeError(f"Input type {npimg.dtype} is not supported")
    npimg = np.ascontiguousarray(npimg)
    # frombuffer reads the bytes *as* `mode` (Image.fromarray stopped taking a mode in Pillow 11.3).
    return Image.frombuffer(mode, (npimg.shape[1], npimg.shape[0]), npimg.tobytes(), "raw", mode, 0, 1)


def normalize(tensor, mean, std, inplace=False):
    """(x - mean[c]) / std[c] per channel of a float (..., C, H, W) tensor."""
    if not _is_tensor(tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
    _assert_image_tensor(tensor)
    if not tensor.is_floating_point():
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < 3:
        raise ValueError("Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                         f"{tensor.size()}")
    if not inplace:
        tensor = tensor.clone()
    mean = _rg.as_tensor(mean, dtype=tensor.dtype)
    std = _rg.as_tensor(std, dtype=tensor.dtype)
    if (std == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by zero.")
    if mean.ndim == 1:
        mean = mean.view(-1, 1, 1)
    if std.ndim == 1:
        std = std.view(-1, 1, 1)
    return tensor.sub_(mean).div_(std)


def hflip(img):
    if _is_tensor(img):
        _assert_image_tensor(img)
        return img.flip(-1)
    if _is_pil_image(img):
        return img.transpose(_Image.FLIP_LEFT_RIGHT)
    return np.ascontiguousarray(_checked_array(img)[:, ::-1])


def vflip(img):
    if _is_tensor(img):
        _assert_image_tensor(img)
        return img.flip(-2)
    if _is_pil_image(img):
        return img.transpose(_Image.FLIP_TOP_BOTTOM)
    return np.ascontiguousarray(_checked_array(img)[::-1])


def _checked_array(img):
    if not (_is_numpy(img) and img.ndim in (2, 3)):
        raise TypeError(f"img should be PIL Image. Got {type(img)}")
    return img


def _parse_padding(padding):
    """int | [p] | [lr, tb] | [l, t, r, b] -> [left, top, right, bottom]."""
    if isinstance(padding, numbers.Number):
        return [int(padding)] * 4
    if len(padding) == 1:
        return [padding[0]] * 4
    if len(padding) == 2:
        return [padding[0], padding[1], padding[0], padding[1]]
    return list(padding)


def _check_pad_args(padding, fill, padding_mode):
    if not isinstance(padding, (numbers.Number, tuple, list)):
        raise TypeError("Got inappropriate padding arg")
    if fill is not None and not isinstance(fill, (numbers.Number, tuple, list)):
        raise TypeError("Got inappropriate fill arg")
    if not isinstance(padding_mode, str):
        raise TypeError("Got inappropriate padding_mode arg")
    if isinstance(padding, (tuple, list)) and len(padding) not in (1, 2, 4):
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad the borders: constant (fill), edge, reflect (no edge repeat) or symmetric (edge repeated)."""
    _check_pad_args(padding, fill, padding_mode)
    if _is_tensor(img):
        return _pad_tensor(img, _parse_padding(padding), fill, padding_mode)
    if _is_pil_image(img):
        return _pad_pil(img, padding, fill, padding_mode)
    return _pad_array(_checked_array(img), _parse_padding(padding), fill, padding_mode)


def _pad_tensor(img, ltrb, fill, padding_mode):
    _assert_image_tensor(img)
    fill = 0 if fill is None else fill
    if not isinstance(fill, (int, float)):
        raise TypeError("Got inappropriate fill arg")
    left, top, right, bottom = ltrb
    if padding_mode == "symmetric":
        return _pad_symmetric(img, [left, right, top, bottom])
    squeeze = img.ndim < 4
    if squeeze:
        img = img.unsqueeze(0)
    out_dtype = img.dtype
    # PyTorch's reflect/replicate kernels are float-only here, as in torchvision.
    cast = padding_mode != "constant" and out_dtype not in (_rg.float32, _rg.float64)
    if cast:
        img = img.to(_rg.float32)
    if padding_mode == "constant":
        img = _nnf.pad(img, [left, right, top, bottom], mode="constant", value=float(fill))
    else:
        mode = "replicate" if padding_mode == "edge" else "reflect"
        img = _nnf.pad(img, [left, right, top, bottom], mode=mode)
    if squeeze:
        img = img.squeeze(0)
    return img.to(out_dtype) if cast else img


def _pad_symmetric(img, lrtb):
    # Gather rows/columns through mirrored index lists; negative padding crops first.
    if min(lrtb) < 0:
        cl, cr, ct, cb = [-min(x, 0) for x in lrtb]
        img = img[..., ct:img.shape[-2] - cb, cl:img.shape[-1] - cr]
        lrtb = [max(x, 0) for x in lrtb]
    left, right, top, bottom = lrtb
    h, w = img.shape[-2], img.shape[-1]
    xs = list(range(left - 1, -1, -1)) + list(range(w)) + [w - 1 - i for i in range(right)]
    ys = list(range(top - 1, -1, -1)) + list(range(h)) + [h - 1 - i for i in range(bottom)]
    if img.ndim not in (3, 4):
        raise RuntimeError("Symmetric padding of N-D tensors are not supported yet")
    return img[..., _rg.tensor(ys)[:, None], _rg.tensor(xs)[None, :]]


def _fill_per_channel(fill, channels, is_float):
    """A fill as one value per channel, converted as Pillow converts it (ints unless mode 'F')."""
    fill = 0 if fill is None else fill
    if isinstance(fill, (list, tuple)):
        if len(fill) == 1:
            fill = list(fill) * channels
        elif len(fill) != channels:
            raise ValueError("The number of elements in 'fill' does not match the number of channels of the image "
                             f"({len(fill)} != {channels})")
    else:
        fill = [fill] * channels
    return [float(f) if is_float else int(f) for f in fill]


def _pad_pil(img, padding, fill, padding_mode):
    from PIL import ImageOps
    if isinstance(padding, (list, tuple)):
        padding = tuple(padding) if len(padding) != 1 else padding[0]
    if padding_mode == "constant":
        values = _fill_per_channel(fill, len(img.getbands()), img.mode == "F")
        color = values[0] if len(values) == 1 else tuple(values)
        if img.mode == "P":
            palette = img.getpalette()
            out = ImageOps.expand(img, border=padding, fill=color)
            out.putpalette(palette)
            return out
        return ImageOps.expand(img, border=padding, fill=color)
    palette = img.getpalette() if img.mode == "P" else None
    out = _Image.fromarray(_pad_array(np.asarray(img), _parse_padding(padding), fill, padding_mode))
    if palette is not None:
        out.putpalette(palette)
    return out


def _pad_array(arr, ltrb, fill, padding_mode):
    left, top, right, bottom = ltrb
    if min(ltrb) < 0:  # negative padding crops, as in Pillow's path
        cl, ct, cr, cb = [-min(x, 0) for x in ltrb]
        arr = arr[ct:arr.shape[0] - cb, cl:arr.shape[1] - cr]
        left, top, right, bottom = [max(x, 0) for x in ltrb]
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (arr.ndim - 2)
    if padding_mode != "constant":
        return np.pad(arr, widths, mode=padding_mode)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    values = _fill_per_channel(fill, channels, arr.dtype.kind == "f")
    out = np.empty((arr.shape[0] + top + bottom, arr.shape[1] + left + right) + arr.shape[2:], arr.dtype)
    out[...] = np.asarray(values, dtype=arr.dtype).reshape((1, 1) + arr.shape[2:] if arr.ndim == 3 else ())
    out[top:top + arr.shape[0], left:left + arr.shape[1]] = arr
    return out


def crop(img, top, left, height, width):
    """The box [top, top + height) x [left, left + width); out-of-image parts are zeros."""
    if _is_pil_image(img):
        return img.crop((left, top, left + width, top + height))
    if _is_tensor(img):
        _assert_image_tensor(img)
    else:
        _checked_array(img)
    _, h, w = get_dimensions(img)
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        ltrb = [max(-left + min(0, right), 0), max(-top + min(0, bottom), 0),
                max(right - max(w, left), 0), max(bottom - max(h, top), 0)]
        return pad(_crop_inside(img, max(top, 0), bottom, max(left, 0), right), ltrb, fill=0)
    return _crop_inside(img, top, bottom, left, right)


def _crop_inside(img, top, bottom, left, right):
    if _is_tensor(img):
        return img[..., top:bottom, left:right]
    return img[top:bottom, left:right]


def center_crop(img, output_size):
    """The centred box of output_size, zero-padding first where the image is smaller."""
    if isinstance(output_size, numbers.Number):
        output_size = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    _, image_height, image_width = get_dimensions(img)
    crop_height, crop_width = output_size
    if crop_width > image_width or crop_height > image_height:
        ltrb = [(crop_width - image_width) // 2 if crop_width > image_width else 0,
                (crop_height - image_height) // 2 if crop_height > image_height else 0,
                (crop_width - image_width + 1) // 2 if crop_width > image_width else 0,
                (crop_height - image_height + 1) // 2 if crop_height > image_height else 0]
        img = pad(img, ltrb, fill=0)
        _, image_height, image_width = get_dimensions(img)
        if crop_width == image_width and crop_height == image_height:
            return img
    crop_top = int(round((image_height - crop_height) / 2.0))
    crop_left = int(round((image_width - crop_width) / 2.0))
    return crop(img, crop_top, crop_left, crop_height, crop_width)


def _compute_resized_output_size(image_size, size, max_size=None):
    h, w = image_size
    short, long = (w, h) if w <= h else (h, w)
    if len(size) == 1:  # the smaller edge becomes size, keeping the aspect ratio
        requested = size[0]
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the "
                                 f"smaller edge size = {size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_w, new_h = size[1], size[0]
    return [new_h, new_w]


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to (h, w), or the smaller edge to `size` keeping the aspect ratio."""
    if isinstance(interpolation, int):
        interpolation = _interpolation_modes_from_int(interpolation)
    elif not isinstance(interpolation, InterpolationMode):
        raise TypeError("Argument interpolation should be a InterpolationMode or a corresponding Pillow integer "
                        "constant")
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(f"Size must be an int or a 1 or 2 element tuple/list, not a {len(size)} element "
                             "tuple/list")
        if max_size is not None and len(size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of the smaller edge, i.e. "
                             "size should be an int or a sequence of length 1 in torchscript mode.")
    _, image_height, image_width = get_dimensions(img)
    if isinstance(size, int):
        size = [size]
    output_size = _compute_resized_output_size((image_height, image_width), list(size), max_size)
    if [image_height, image_width] == output_size:
        return img
    if _is_pil_image(img):
        if antialias is False:
            warnings.warn("Anti-alias option is always applied for PIL Image input. Argument antialias is ignored.")
        return img.resize(tuple(output_size[::-1]), pil_modes_mapping[interpolation])
    if _is_tensor(img):
        return _resize_tensor(img, output_size, interpolation.value, antialias)
    # An HWC array stands in for a PIL image: antialiased like Pillow, nearest as Pillow's
    # (pixel centres, i.e. nearest-exact), rounded back to the array's dtype.
    arr = _checked_array(img)
    mode = "nearest-exact" if interpolation == InterpolationMode.NEAREST else interpolation.value
    chw = _rg.from_numpy(np.ascontiguousarray(arr.reshape(arr.shape[:2] + (-1,)).transpose(2, 0, 1)))
    out = _resize_tensor(chw, output_size, mode, True).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out.reshape(out.shape[:2]) if arr.ndim == 2 else out)


def _resize_tensor(img, size, interpolation, antialias):
    _assert_image_tensor(img)
    if interpolation not in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        raise ValueError(f"Interpolation mode {interpolation} is unsupported for tensors: use nearest, "
                         "nearest-exact, bilinear or bicubic")
    if antialias is None or interpolation not in ("bilinear", "bicubic"):
        antialias = False
    lead = img.shape[:-2]
    batch = img.reshape(-1, 1, img.shape[-2], img.shape[-1]) if img.ndim != 4 else img
    out_dtype = batch.dtype
    cast = out_dtype not in (_rg.float32, _rg.float64)
    if cast:
        batch = batch.to(_rg.float32)
    align = False if interpolation in ("bilinear", "bicubic") else None
    out = _nnf.interpolate(batch, size=list(size), mode=interpolation, align_corners=align, antialias=antialias)
    if interpolation == "bicubic" and out_dtype == _rg.uint8:
        out = out.clamp(min=0, max=255)
    if cast:
        if not out_dtype.is_floating_point:
            out = _rg.round(out)  # round before the cast truncates
        out = out.to(out_dtype)
    return out if img.ndim == 4 else out.reshape(*lead, *out.shape[-2:])


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
    img = crop(img, top, left, height, width)
    return resize(img, size, interpolation, antialias=antialias)
