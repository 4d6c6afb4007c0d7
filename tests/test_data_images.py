"""minideconv.data.images, the one image pipeline: ``minideconv project --image`` (through
``cli.checks.load_image`` → ``data.load_image``) and ``minideconv figure2`` (through
``ImageFolder``) read one file as one array — turned upright by its EXIF tag, transparency
over mid-grey, every mode Pillow opens at its own bit depth — and equal to what Pillow and
NumPy give when the same steps are done by hand."""

from __future__ import annotations

import os
import struct
import zlib

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from PIL import Image  # noqa: E402

from minideconv import cli, data  # noqa: E402
from minideconv.cli import checks  # noqa: E402
from minideconv.data import images  # noqa: E402
from minideconv.data.images import SUFFIXES, ImageFolder, ImageReadError  # noqa: E402

GREY = 0.5          # the documented background without normalisation
ORIENTATION = 0x0112
# what each EXIF orientation asks the viewer to do to the stored pixels (np.rot90's k)
TURN = {6: -1,      # 6: rotate 90° clockwise to display
        8: 1}       # 8: rotate 90° counter-clockwise to display


def upright_picture(height=40, width=32):
    """An upright RGB picture (H, W, 3) uint8 whose top-left corner is red, smooth
    elsewhere (so that a JPEG keeps it): any turn or flip moves the red corner."""
    y, x = np.mgrid[0:height, 0:width]
    picture = np.stack([40 + 4 * x, 60 + 3 * y, 200 - 2 * x - y], axis=-1)
    picture[:12, :12] = (250, 10, 10)
    return picture.clip(0, 255).astype(np.uint8)


def rotated_jpeg(path, orientation):
    """A JPEG whose pixels are stored turned, with the EXIF tag that turns them back;
    returns the stored pixels as decoded (Image.open applies no orientation)."""
    turn = TURN[orientation]
    stored = np.ascontiguousarray(np.rot90(upright_picture(), -turn))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    with Image.open(path) as image:
        assert image.getexif()[ORIENTATION] == orientation
        return np.asarray(image.convert("RGB"))


def centre_crop(values, size=32):
    """The centre size × size of an (H, W, C) array whose shorter side is ``size``: the
    pipeline's resampling is then exactly a crop."""
    h, w = values.shape[:2]
    assert min(h, w) == size
    top, left = (h - size) // 2, (w - size) // 2
    return values[top:top + size, left:left + size]


def chw(values):
    """(H, W, C) float64 → (C, H, W) float32, the pipeline's layout and dtype."""
    return np.ascontiguousarray(values.transpose(2, 0, 1)).astype(np.float32)


def composite(rgb, alpha, background=GREY):
    """a·colour + (1 − a)·background on uint8 colour and alpha, in float64."""
    a = alpha[..., None] / 255.0
    return (rgb / 255.0) * a + (1 - a) * background


def rgba_picture(rng, height=36, width=32):
    """RGBA pixels, transparent, half-transparent and opaque, of colours that Pillow's
    8-bit premultiplication keeps exact (colour multiples of 5, alpha multiples of 51)."""
    rgb = 5 * rng.integers(0, 52, (height, width, 3))
    alpha = 51 * rng.integers(0, 6, (height, width))
    alpha[:4] = 0                                   # wholly transparent, over any colour
    alpha[4:8] = 102                                # 40 % opaque
    alpha[-4:] = 255
    return rgb.astype(np.uint8), alpha.astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    """The two files of the identity test, and what each must read as."""
    folder = tmp_path / "photos"
    folder.mkdir()
    expected = {}
    for orientation in TURN:
        path = folder / f"rotated{orientation}.jpg"
        stored = rotated_jpeg(path, orientation)
        upright = np.rot90(stored, TURN[orientation])          # what a viewer shows
        assert upright.shape == (40, 32, 3)
        expected[path] = chw(centre_crop(upright / 255.0))
    rgb, alpha = rgba_picture(np.random.default_rng(0))
    path = folder / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    expected[path] = chw(centre_crop(composite(rgb, alpha)))
    return folder, expected


def both_paths(path, folder=None):
    """(what project --image reads, what figure2 reads) from one file, for the shipped
    3 × 32 × 32 network."""
    folder = path.parent if folder is None else folder
    return checks.load_image(str(path)), ImageFolder(folder, (32, 32)).read(path)


def test_project_and_figure2_read_rotated_and_transparent_files_identically(photos):
    """The EXIF-turned JPEGs and the RGBA PNG: one array from both commands, equal to the
    stored pixels turned (and the alpha composited) by hand."""
    folder, expected = photos
    for path, wanted in expected.items():
        project_reads, figure2_reads = both_paths(path, folder)
        assert project_reads.shape == (3, 32, 32) and project_reads.dtype == np.float32
        assert np.array_equal(project_reads, figure2_reads), path.name
        assert np.array_equal(project_reads, wanted), path.name
    for orientation in TURN:                 # the red corner is back at the top left
        x = checks.load_image(str(folder / f"rotated{orientation}.jpg"))
        corner = x[:, :6, :6].mean(axis=(1, 2))                # rows 4..9 of the upright
        assert corner[0] > 0.9 and corner[1] < 0.15 and corner[2] < 0.15, corner
    cutout = checks.load_image(str(folder / "cutout.png"))
    assert np.all(cutout[:, :2] == np.float32(GREY))            # rows 2, 3: alpha 0


def test_project_cli_projects_the_upright_image(photos, tmp_path, monkeypatch, capsys):
    """``minideconv project --image rotated6.jpg``: the image it projects is the turned
    one, and the figure shows it."""
    import minideconv.plots
    import minideconv.visualize
    folder, expected = photos
    seen = {}
    project, figure = minideconv.visualize.project, minideconv.plots.projection_figure

    def spy_project(net, image, *args, **kwargs):
        seen["projected"] = image
        return project(net, image, *args, **kwargs)

    def spy_figure(image, *args, **kwargs):
        seen["shown"] = image
        return figure(image, *args, **kwargs)

    monkeypatch.setattr(minideconv.visualize, "project", spy_project)
    monkeypatch.setattr(minideconv.plots, "projection_figure", spy_figure)
    path = folder / "rotated6.jpg"
    out = tmp_path / "p.png"
    code = cli.main(["project", "--image", str(path), "--layer", "5", "--channel", "3",
                     "--out", str(out)])
    assert code == 0 and out.stat().st_size > 0
    assert "figure written to" in capsys.readouterr().out
    assert np.array_equal(seen["projected"], expected[path])
    assert np.array_equal(seen["shown"], expected[path])
    # and the projection is the one of the upright array, not of the stored pixels
    net = data.load_model()
    assert np.array_equal(project(net, seen["projected"], 5, 3),
                          project(net, expected[path], 5, 3))


# --------------------------------------------------------------------------- modes

def save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def read_both_ways(path):
    """The two commands' arrays must be one array; return it."""
    project_reads, figure2_reads = both_paths(path)
    assert np.array_equal(project_reads, figure2_reads), path.name
    assert np.array_equal(data.read_image(path), project_reads)
    return project_reads


def test_grey_is_repeated_for_rgb_and_kept_for_grey_networks(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (32, 48), dtype=np.uint8)
    path = save(tmp_path, "grey.png", Image.fromarray(grey, "L"))
    wanted = centre_crop(grey[..., None] / 255.0)
    assert np.array_equal(read_both_ways(path), chw(np.repeat(wanted, 3, axis=-1)))
    one = ImageFolder(tmp_path, (32, 32), channels=1).read(path)
    assert np.array_equal(one, chw(wanted))


def test_16_bit_grey_is_scaled_by_its_own_depth(tmp_path):
    """'I;16' values above 255 keep their resolution, and 65535 reads as 1.0 (the old
    load_image clipped everything above 255 to 1)."""
    deep = (np.arange(32 * 32, dtype=np.int64).reshape(32, 32) * 64).astype(np.uint16)
    deep[0, 0], deep[-1, -1] = 0, 65535
    image = Image.fromarray(deep)
    assert image.mode == "I;16"
    path = save(tmp_path, "deep.png", image)
    x = read_both_ways(path)
    assert x.max() == 1.0 and x[0, -1, -1] == 1.0 and x[0, 0, 0] == 0.0
    assert np.array_equal(x, chw(np.repeat(deep[..., None] / 65535.0, 3, axis=-1)))
    assert len(np.unique(x)) > 256                  # more levels than 8 bits hold
    pgm = save(tmp_path, "deep.pgm", image)         # Pillow opens it as mode 'I'
    with Image.open(pgm) as opened:
        assert opened.mode == "I"
    assert np.array_equal(read_both_ways(pgm), x)


def test_32_bit_grey_tiff_is_scaled_by_its_bits_per_sample(tmp_path):
    wide = np.zeros((32, 32), np.int32)
    wide[0, :4] = [0, 2**16, 2**30, 2**31 - 1]       # signed 32-bit: 2³¹ − 1 is white
    image = Image.fromarray(wide)
    assert image.mode == "I"
    x = read_both_ways(save(tmp_path, "wide.tif", image))
    assert np.allclose(x[0, 0, :4], [0, 2**16 / (2**31 - 1), 2**30 / (2**31 - 1), 1.0])


def palette_image(rng):
    indices = rng.integers(0, 4, (32, 40)).astype(np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.reshape(-1).tolist())
    return image, indices, palette


def test_palette(tmp_path):
    image, indices, palette = palette_image(np.random.default_rng(2))
    x = read_both_ways(save(tmp_path, "palette.png", image))
    assert np.array_equal(x, chw(centre_crop(palette[indices] / 255.0)))


def test_palette_with_transparency(tmp_path):
    """A palette whose entries have their own alpha (PNG tRNS), and a GIF's one
    transparent index."""
    image, indices, palette = palette_image(np.random.default_rng(3))
    alphas = np.array([0, 102, 255, 51], np.uint8)
    path = save(tmp_path, "palette_alpha.png", image, transparency=alphas.tobytes())
    wanted = composite(palette[indices].astype(np.float64), alphas[indices])
    assert np.array_equal(read_both_ways(path), chw(centre_crop(wanted)))

    gif = save(tmp_path, "palette.gif", image, transparency=1)    # index 1 transparent
    opaque = np.where(indices == 1, 0, 255).astype(np.uint8)
    wanted = composite(palette[indices].astype(np.float64), opaque)
    assert np.array_equal(read_both_ways(gif), chw(centre_crop(wanted)))


def test_grey_with_alpha(tmp_path):
    rng = np.random.default_rng(4)
    grey = (5 * rng.integers(0, 52, (32, 36))).astype(np.uint8)
    alpha = (51 * rng.integers(0, 6, (32, 36))).astype(np.uint8)
    path = save(tmp_path, "la.png", Image.fromarray(np.dstack([grey, alpha]), "LA"))
    wanted = composite(np.repeat(grey[..., None], 3, axis=-1).astype(np.float64), alpha)
    assert np.array_equal(read_both_ways(path), chw(centre_crop(wanted)))
    # one transparent value (PNG tRNS) in a grey and in an RGB image
    path = save(tmp_path, "grey_key.png", Image.fromarray(grey, "L"), transparency=100)
    keyed = np.where(grey == 100, 0, 255).astype(np.uint8)
    wanted = composite(np.repeat(grey[..., None], 3, axis=-1).astype(np.float64), keyed)
    assert np.array_equal(read_both_ways(path), chw(centre_crop(wanted)))
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    path = save(tmp_path, "rgb_key.png", Image.fromarray(rgb), transparency=(100,) * 3)
    assert np.array_equal(read_both_ways(path), chw(centre_crop(wanted)))


def test_cmyk_and_one_bit(tmp_path):
    rng = np.random.default_rng(5)
    cmyk = Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), "CMYK")
    path = save(tmp_path, "print.tif", cmyk)
    wanted = np.asarray(cmyk.convert("RGB")) / 255.0
    assert np.array_equal(read_both_ways(path), chw(wanted))
    bits = rng.integers(0, 2, (32, 32)).astype(bool)
    path = save(tmp_path, "bits.png", Image.fromarray(bits))
    assert np.array_equal(read_both_ways(path), chw(np.repeat(bits[..., None], 3, -1)
                                                    .astype(np.float64)))


def test_transparency_lies_over_the_mean_once_normalised(tmp_path):
    rgb, alpha = rgba_picture(np.random.default_rng(6))
    path = save(tmp_path, "cutout.png", Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    x = images.read_file(path, (32, 32), mean=images.IMAGENET_MEAN, std=images.IMAGENET_STD)
    assert np.allclose(x[:, :2], 0, atol=1e-6)           # alpha 0: the mean colour, 0
    assert np.array_equal(x, ImageFolder(tmp_path, (32, 32), mean=images.IMAGENET_MEAN,
                                         std=images.IMAGENET_STD).read(path))


def test_large_jpeg_reads_close_to_its_full_decode():
    """grace_hopper (512 × 600) is decoded at 1/4 scale (>= 4·S = 128 pixels on its
    shorter side): within a few 1/255 of the full decode's box average.  (At 1/8 scale,
    figure2's old rule, it was off by up to 55/255.)"""
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    with Image.open(path) as image:
        full = image.convert("RGB")
    w, h = full.size
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    wanted = np.asarray(full.resize((32, 32), Image.Resampling.BOX, box=box)) / 255.0
    x = data.sample_image("grace_hopper")
    assert np.abs(x - chw(wanted)).max() <= 4 / 255
    assert np.array_equal(x, ImageFolder(os.path.dirname(path), (32, 32)).read(path))


# --------------------------------------------------------------------------- files

def test_the_suffixes_pillow_reads_are_listed_and_read(tmp_path):
    """.bmp, .gif, .tif, .tiff and .webp are images to figure2, not ignored, in any case;
    the lossless ones read as their pixels."""
    from PIL import features
    assert SUFFIXES == (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    lossless = {"a.bmp": {}, "b.TIF": {}, "c.tiff": {}, "d.png": {}}
    if features.check("webp"):              # Pillow built with libwebp
        lossless["e.WebP"] = {"lossless": True}
    for name, options in lossless.items():
        save(tmp_path, name, Image.fromarray(pixels), **options)
    palette = Image.fromarray(pixels).quantize(16)
    save(tmp_path, "f.gif", palette)
    save(tmp_path, "g.jpg", Image.fromarray(pixels))
    (tmp_path / "notes.txt").write_text("not an image\n")
    folder = ImageFolder(tmp_path, (32, 32))          # what figure2 lists
    assert [os.path.basename(p) for p in folder.paths] == list(lossless) + ["f.gif",
                                                                            "g.jpg"]
    assert [os.path.basename(p) for p in folder.ignored] == ["notes.txt"]
    for name in lossless:
        assert np.array_equal(read_both_ways(tmp_path / name), chw(pixels / 255.0)), name
    gif = np.asarray(palette.convert("RGB")) / 255.0
    assert np.array_equal(read_both_ways(tmp_path / "f.gif"), chw(gif))
    assert read_both_ways(tmp_path / "g.jpg").shape == (3, 32, 32)


def zero_width_png():
    """A PNG whose header says 0 × 5 pixels (Pillow will not write one)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.fixture
def bad_files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(upright_picture()).save(good)
    jpeg = tmp_path / "good.jpg"
    Image.fromarray(upright_picture()).save(jpeg)
    made = {"text.png": b"not an image\n", "empty.jpg": b"",
            "truncated.png": good.read_bytes()[:len(good.read_bytes()) // 2],
            "truncated.jpg": jpeg.read_bytes()[:len(jpeg.read_bytes()) // 2],
            "zero.png": zero_width_png()}
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path, sorted(made)


def test_bad_files_are_one_clear_line_naming_the_file(bad_files, capsys):
    folder, names = bad_files
    reasons = {}
    for name in names:
        path = folder / name
        with pytest.raises(ImageReadError) as error:
            ImageFolder(folder, (32, 32)).read(path)
        reasons[name] = str(error.value)
        assert "\n" not in reasons[name] and reasons[name]
        with pytest.raises(ValueError, match="could not read .* as an image"):
            data.load_image(str(path))
        code = cli.main(["project", "--image", str(path), "--layer", "5", "--channel",
                         "3", "--out", str(folder / "p.png")])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        assert err.strip().splitlines() == [
            f"minideconv project: error: --image: could not read {str(path)!r} as an "
            f"image: {reasons[name]}"]
    assert reasons["empty.jpg"] == "the file is empty (0 bytes)"
    assert reasons["text.png"] == "not an image file that Pillow can read"
    assert reasons["zero.png"] == "not an image file that Pillow can read"
    assert "truncated" in reasons["truncated.jpg"].lower()
    assert "truncated" in reasons["truncated.png"].lower(), reasons


def test_an_image_without_pixels_is_refused(tmp_path, monkeypatch, capsys):
    """Pillow refuses 0 × n files when it opens them; should one get through (another
    Pillow, another format), the pipeline says so instead of resampling nothing."""
    import PIL.Image
    path = tmp_path / "nothing.png"
    path.write_bytes(b"stands for a file Pillow opens as 0 x 5 pixels")
    monkeypatch.setattr(PIL.Image, "open", lambda _: Image.new("RGB", (0, 5)))
    with pytest.raises(ImageReadError, match=r"^the image has no pixels \(0 x 5\)$"):
        images.read_file(path, (32, 32))
    code = cli.main(["project", "--image", str(path), "--layer", "5", "--channel", "3",
                     "--out", str(tmp_path / "p.png")])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"minideconv project: error: --image: could not read {str(path)!r} as an image: "
        f"the image has no pixels (0 x 5)")
