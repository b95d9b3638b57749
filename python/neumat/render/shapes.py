"""Triangle meshes with UVs and tangent frames: loading (trimesh) and built-in shapes.

Conventions: right-handed world space, scene units; faces counter-clockwise seen from outside
(the side their normal points to). UV ``(u, v)`` addresses textures as :mod:`neumat.bundle`
does (u along a row, v down the rows, v = 0 at row 0). Tangent frames are per vertex:
``tangent.xyz`` is the unit direction of dP/du orthogonalized against the normal (Gram-Schmidt)
and ``tangent.w = ±1`` the handedness, so ``bitangent = w * cross(normal, tangent)`` points
along dP/dv. Tangents are the per-face UV derivatives (Lengyel 2001) accumulated over the faces
around a vertex, weighted by face area (MikkTSpace-like, without its corner splitting).

Every :class:`Mesh` has finite positions, normals and UVs and face indices in range; a mesh file
(:func:`load_mesh`) must also hold what its header declares and cover some area, on the surface
and in UV space. Anything else is a :class:`MeshError` naming the file and the problem.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class MeshError(ValueError):
    """A mesh that cannot be rendered: unreadable or inconsistent file, non-finite positions,
    normals or UVs, face indices out of range, or no surface / UV area. The message names the
    file (when loaded from one) and the problem."""


def _require_finite(name: str, values: np.ndarray) -> None:
    """MeshError when a row of ``values`` ([V, C]) holds NaN or ±inf, naming the first one."""
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise MeshError(f"{bad.size} vertex {name} not finite (NaN or inf), the first at vertex {bad[0]}: "
                        f"{values[bad[0]].tolist()}")


@dataclass
class Mesh:
    """An indexed triangle mesh with shading attributes (all float32 except faces)."""

    positions: np.ndarray
    """[V, 3] vertex positions, scene units."""
    normals: np.ndarray
    """[V, 3] unit shading normals."""
    uvs: np.ndarray
    """[V, 2] texture coordinates (repeats of the material tile)."""
    faces: np.ndarray
    """[F, 3] int32 vertex indices, counter-clockwise from outside."""
    tangents: np.ndarray | None = None
    """[V, 4] unit tangent (xyz, orthogonal to the normal) + handedness w = ±1; computed by
    :func:`compute_tangents` when None."""

    def __post_init__(self) -> None:
        self.positions = np.ascontiguousarray(self.positions, np.float32)
        self.normals = np.ascontiguousarray(self.normals, np.float32)
        self.uvs = np.ascontiguousarray(self.uvs, np.float32)
        self.faces = np.ascontiguousarray(self.faces, np.int32)
        v = self.positions.shape[0]
        if self.positions.shape != (v, 3) or self.normals.shape != (v, 3) or self.uvs.shape != (v, 2):
            raise MeshError(
                f"positions/normals/uvs must be [V,3]/[V,3]/[V,2], got {self.positions.shape}, "
                f"{self.normals.shape}, {self.uvs.shape}"
            )
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.size == 0:
            raise MeshError(f"faces must be a non-empty [F, 3] array, got {self.faces.shape}")
        outside = np.flatnonzero(((self.faces < 0) | (self.faces >= v)).any(axis=1))
        if outside.size:
            raise MeshError(f"{outside.size} faces refer to vertices that do not exist, the first face {outside[0]}: "
                            f"{self.faces[outside[0]].tolist()} (indices from 0; the mesh has {v} vertices)")
        _require_finite("positions are", self.positions)
        _require_finite("normals are", self.normals)
        _require_finite("UVs are", self.uvs)
        if self.tangents is None:
            self.tangents = compute_tangents(self.positions, self.normals, self.uvs, self.faces)
        self.tangents = np.ascontiguousarray(self.tangents, np.float32)

    def face_areas(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-face surface area (scene units²) and UV area (UV units²), float64 [F] each."""
        p, t = self.positions.astype(np.float64), self.uvs.astype(np.float64)
        f = self.faces
        area = 0.5 * np.linalg.norm(np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]), axis=1)
        e1, e2 = t[f[:, 1]] - t[f[:, 0]], t[f[:, 2]] - t[f[:, 0]]
        return area, 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])

    def require_area(self) -> tuple[float, float]:
        """Total surface area (scene units²) and UV area (UV units²) of the faces; MeshError
        when either is zero (or NaN): the height field and the texel footprints are scaled by
        their ratio (:meth:`uv_to_world`)."""
        area, uv_area = (float(a.sum()) for a in self.face_areas())
        if not area > 0:
            raise MeshError(f"the {len(self.faces)} faces have no surface area (every triangle is degenerate)")
        if not uv_area > 0:
            raise MeshError(f"the UVs of the {len(self.faces)} faces cover no area; the mesh needs a UV parameterization")
        return area, uv_area

    def uv_to_world(self) -> float:
        """Scene units per UV unit: sqrt(surface area / UV area), the isotropic scale used to
        convert UV-unit heights and texel footprints (exact for a uniformly mapped plane);
        MeshError when either area is zero (:meth:`require_area`)."""
        area, uv_area = self.require_area()
        return float(np.sqrt(area / uv_area))


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] float32 area-weighted average of the face normals around each vertex."""
    p = positions.astype(np.float64)
    fn = np.cross(p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]])
    n = np.zeros_like(p)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(length > 0, length, 1.0)).astype(np.float32)


def compute_tangents(positions, normals, uvs, faces) -> np.ndarray:
    """[V, 4] float32 tangent frames (see the module docstring). Vertices whose faces have
    degenerate UVs get any unit vector orthogonal to the normal, handedness +1."""
    p, n, t = (np.asarray(a, np.float64) for a in (positions, normals, uvs))
    e1, e2 = p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]]
    d1, d2 = t[faces[:, 1]] - t[faces[:, 0]], t[faces[:, 2]] - t[faces[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    # area weighting: dP/du * det has magnitude ~ world area; sign(det) keeps orientation
    sdir = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * np.sign(det)[:, None]
    tdir = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * np.sign(det)[:, None]
    tan, bit = np.zeros_like(p), np.zeros_like(p)
    for k in range(3):
        np.add.at(tan, faces[:, k], sdir)
        np.add.at(bit, faces[:, k], tdir)
    tan -= n * np.sum(n * tan, axis=1, keepdims=True)
    length = np.linalg.norm(tan, axis=1, keepdims=True)
    bad = length[:, 0] < 1e-12
    if bad.any():  # any vector orthogonal to n
        helper = np.where(np.abs(n[bad, 0:1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        alt = np.cross(n[bad], helper)
        tan[bad] = alt
        length[bad] = np.linalg.norm(alt, axis=1, keepdims=True)
    tan /= length
    w = np.where(np.sum(np.cross(n, tan) * bit, axis=1) < 0, -1.0, 1.0)
    return np.concatenate([tan, w[:, None]], axis=1).astype(np.float32)


TEXT_MESH_SUFFIXES = (".obj",)
"""Text formats :func:`load_mesh` decodes itself (UTF-8, else Latin-1), so that a non-UTF-8
comment or name never reaches trimesh's encoding detection (``charset-normalizer``)."""


def _read_text(path: Path) -> io.StringIO:
    """The file's text: UTF-8 (a byte-order mark is dropped), else Latin-1, which decodes any
    bytes (OBJ keywords and numbers are ASCII; only comments, names and paths may not be)."""
    data = path.read_bytes()
    try:
        return io.StringIO(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return io.StringIO(data.decode("latin-1"))


def _require_declared_counts(metadata: dict) -> None:
    """MeshError when a PLY header declares more or fewer elements (vertices, faces) than the
    file holds (trimesh keeps both in ``metadata["_ply_raw"]``; other formats declare none)."""
    for element, info in metadata.get("_ply_raw", {}).items():
        columns = list(info.get("data", {}).values())
        held = len(columns[0]) if columns else 0
        if held != info.get("length", held):
            raise MeshError(f"the header declares {info['length']} {element} elements but the file holds {held}")


def load_mesh(path: str | Path) -> Mesh:
    """Load an OBJ/PLY/GLB (anything trimesh reads) as one :class:`Mesh` (scenes are merged).

    Normals are trimesh's ``vertex_normals`` (it recomputes them, angle-weighted, rather than
    keeping an OBJ's ``vn``); tangents are computed by :func:`compute_tangents`. OBJ text is
    decoded as UTF-8, else Latin-1 (:data:`TEXT_MESH_SUFFIXES`).

    Raises:
        ImportError: trimesh is missing (``pip install trimesh``).
        OSError: the file cannot be read.
        MeshError: trimesh cannot parse the file, a face refers to a vertex or UV that does not
            exist, a PLY header declares other element counts than the file holds, the file has
            no per-vertex texture coordinates, a position or UV is NaN or infinite, or the faces
            cover no surface or no UV area. The message starts with the path.
    """
    try:
        import trimesh
    except ImportError as e:
        raise ImportError("loading meshes needs trimesh: pip install trimesh") from e
    path = Path(path)
    source = _read_text(path) if path.suffix.lower() in TEXT_MESH_SUFFIXES else str(path)
    try:
        mesh = trimesh.load(source, file_type=path.suffix.lstrip(".").lower() or None, force="mesh",
                            process=False, resolver=trimesh.resolvers.FilePathResolver(str(path)))
    except IndexError as e:
        raise MeshError(f"{path}: a face refers to a vertex or texture coordinate that does not exist ({e})") from None
    except ImportError as e:  # trimesh's optional parsers (e.g. charset-normalizer for other text formats)
        raise MeshError(f"{path}: trimesh needs a missing package to read it: {e} (pip install it)") from None
    except (ValueError, KeyError, TypeError) as e:
        raise MeshError(f"{path}: trimesh cannot parse it: {type(e).__name__}: {e}") from None
    uv = getattr(mesh.visual, "uv", None)
    try:
        _require_declared_counts(mesh.metadata)
        if uv is None or len(uv) != len(mesh.vertices):
            raise MeshError("the mesh has no per-vertex texture coordinates (none in the file, or its faces "
                            "refer to texture coordinates that do not exist)")
        positions = np.asarray(mesh.vertices)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise MeshError(f"vertices must have 3 coordinates each, the file gives {positions.shape[1:]} "
                            "(a 'v' line with fewer numbers?)")
        loaded = Mesh(positions, np.asarray(mesh.vertex_normals), np.asarray(uv), np.asarray(mesh.faces))
        loaded.require_area()
    except MeshError as e:
        raise MeshError(f"{path}: {e}") from None
    return loaded


def save_mesh(mesh: Mesh, path: str | Path, digits: int = 6) -> None:
    """Write ``mesh`` (positions, UVs, normals) as a self-contained Wavefront OBJ (no material
    file), ``digits`` decimals; other suffixes go through trimesh."""
    path = Path(path)
    if path.suffix.lower() != ".obj":
        import trimesh

        visual = trimesh.visual.TextureVisuals(uv=mesh.uvs)
        trimesh.Trimesh(mesh.positions, mesh.faces, vertex_normals=mesh.normals, visual=visual,
                        process=False).export(str(path))
        return
    fmt = f"%.{digits}f"
    lines = ["# neumat.render.shapes.save_mesh"]
    for tag, arr in (("v", mesh.positions), ("vt", mesh.uvs), ("vn", mesh.normals)):
        lines += [tag + " " + " ".join(fmt % x for x in row) for row in arr.astype(np.float64)]
    lines += ["f " + " ".join(f"{i}/{i}/{i}" for i in row) for row in mesh.faces + 1]
    path.write_text("\n".join(lines) + "\n")


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Faces of a (rows+1)×(cols+1) vertex grid, counter-clockwise seen along +u × +v."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = (r * (cols + 1) + c).ravel()
    b, d, e = a + 1, a + cols + 1, a + cols + 2
    return np.concatenate([np.stack([a, b, e], 1), np.stack([a, e, d], 1)]).astype(np.int32)


def plane(size: float = 2.0, center=(0.0, 0.0, 0.0), uv_per_unit: float = 1.0,
          segments: int = 1) -> Mesh:
    """A square in z = center.z, normal +z, side ``size``; u = uv_per_unit·(x - x0), v =
    uv_per_unit·(y - y0) with (x0, y0) its lower corner (so T = +x, B = +y)."""
    ticks = np.linspace(0.0, size, segments + 1)
    y, x = np.meshgrid(ticks, ticks, indexing="ij")
    c = np.asarray(center, np.float64)
    pos = np.stack([x.ravel() + c[0] - size / 2, y.ravel() + c[1] - size / 2,
                    np.full(x.size, c[2])], 1)
    uv = np.stack([x.ravel(), y.ravel()], 1) * uv_per_unit
    nrm = np.tile([0.0, 0.0, 1.0], (x.size, 1))
    return Mesh(pos, nrm, uv, _grid_faces(segments, segments))


def uv_sphere(radius: float = 1.0, n_lat: int = 32, n_lon: int = 64, uv_repeat=(2.0, 1.0),
              center=(0.0, 0.0, 0.0)) -> Mesh:
    """A UV sphere: u = uv_repeat[0]·φ/2π (φ from +x towards +y), v = uv_repeat[1]·θ/π (θ from
    +z); analytic normals. The seam at φ = 0 duplicates vertices (different u)."""
    th = np.linspace(0.0, np.pi, n_lat + 1)
    ph = np.linspace(0.0, 2 * np.pi, n_lon + 1)
    t, p = np.meshgrid(th, ph, indexing="ij")
    nrm = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    uv = np.stack([p / (2 * np.pi) * uv_repeat[0], t / np.pi * uv_repeat[1]], -1).reshape(-1, 2)
    faces = _grid_faces(n_lat, n_lon)[:, [0, 2, 1]]  # outward: φ × θ points inward
    pos = nrm * radius + np.asarray(center, np.float64)
    return Mesh(pos, nrm, uv, faces)


def rounded_cube(half_size: float = 1.0, radius: float = 0.25, segments: int = 16) -> Mesh:
    """A cube of half side ``half_size`` with edges rounded by ``radius``; each of the 6 faces
    maps to the UV square [0, 1]² (seams at the cube edges), normals analytic."""
    g = np.linspace(-1.0, 1.0, segments + 1)
    b, a = np.meshgrid(g, g, indexing="ij")
    parts, faces, offset = [], [], 0
    for axis in range(3):
        for sign in (1.0, -1.0):
            q = np.zeros((a.size, 3))
            u_ax, v_ax = (axis + 1) % 3, (axis + 2) % 3
            q[:, axis] = sign
            q[:, u_ax] = a.ravel() * sign
            q[:, v_ax] = b.ravel()
            parts.append((q, np.stack([(a.ravel() + 1) / 2, (b.ravel() + 1) / 2], 1)))
            faces.append(_grid_faces(segments, segments) + offset)
            offset += a.size
    q = np.concatenate([p for p, _ in parts]) * half_size
    inner = np.clip(q, -(half_size - radius), half_size - radius)
    nrm = q - inner
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return Mesh(inner + radius * nrm, nrm, np.concatenate([t for _, t in parts]),
                np.concatenate(faces))


def draped_sheet(size: float = 2.0, segments: int = 48, uv_repeat: float = 2.0) -> Mesh:
    """A cloth-like sheet: a square draped over a ball with sinusoidal folds (a smooth closed
    form, not a simulation); z up, UVs proportional to the flat sheet's (x, y)."""
    ticks = np.linspace(-size / 2, size / 2, segments + 1)
    y, x = np.meshgrid(ticks, ticks, indexing="ij")
    r = np.hypot(x, y) / (size / 2)
    angle = np.arctan2(y, x)
    z = 0.6 * np.exp(-2.5 * r**2) + 0.06 * r * np.sin(7 * angle) * np.clip(r - 0.2, 0, None)
    pos = np.stack([x, y, z], -1).reshape(-1, 3)
    uv = (np.stack([x, y], -1).reshape(-1, 2) / size + 0.5) * uv_repeat
    faces = _grid_faces(segments, segments)
    return Mesh(pos, vertex_normals(pos, faces), uv, faces)
