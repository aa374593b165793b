# XMem (Cheng & Schwing, ECCV 2022) rebuilt in plain PyTorch for SegKit's parity tests.
# Written from a reading of XMem's published code, not copied from it: the parameter
# names (and so the state-dict keys) are XMem's, so a released XMem checkpoint loads
# with load_state_dict(strict=True), and this module's randomised weights load into
# XMem's own network the same way.
#
# Contents
#   OracleXMem            - the network: key encoder (ResNet-50 to stride 16), key
#                           projection, value encoder (ResNet-18 on image + masks),
#                           decoder with the sensory-memory GRU, soft aggregation.
#   get_similarity,
#   do_softmax            - the memory-reading maths (anisotropic L2, top-k softmax).
#   OracleXMemProcessor   - the per-frame inference loop with working / long-term memory,
#                           object groups, usage counting and memory consolidation.
#   preprocess, resize_mask, pad_divide_by, unpad, soft_aggregate - data helpers.
#   randomize             - deterministic random weights with sane activation scales.
#   xmem_read_memory, xmem_training_pass, bootstrapped_ce, dice_loss, xmem_losses
#                         - training: XMemTrainer.do_pass's forward pass and LossComputer.
#
# Only torch is needed; nothing is downloaded (XMem asks for ImageNet backbones).
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------
# Backbone pieces (torchvision-style ResNet units; the stride sits on the 3x3 conv)
# ----------------------------------------------------------------------------------

class _ResUnit(nn.Module):
    """A ResNet unit. `bottleneck` selects 1x1-3x3-1x1 (x4 expansion) or 3x3-3x3."""

    def __init__(self, cin, width, stride, bottleneck):
        super().__init__()
        cout = width * 4 if bottleneck else width
        self.bottleneck = bottleneck
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
        else:
            self.conv1 = nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))
        else:
            self.downsample = None

    def forward(self, x):
        pairs = [(self.conv1, self.bn1), (self.conv2, self.bn2)]
        if self.bottleneck:
            pairs.append((self.conv3, self.bn3))
        y = x
        for i, (conv, bn) in enumerate(pairs):
            y = bn(conv(y))
            if i + 1 < len(pairs):
                y = F.relu(y)
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


def _res_stage(cin, width, units, stride, bottleneck):
    cout = width * 4 if bottleneck else width
    return nn.Sequential(*[
        _ResUnit(cin if i == 0 else cout, width, stride if i == 0 else 1, bottleneck)
        for i in range(units)
    ])


# ----------------------------------------------------------------------------------
# Per-object ("group") pieces. Group features are [B, N, C, H, W]; every conv below is
# applied to the B*N flattened batch.
# ----------------------------------------------------------------------------------

def _objwise(fn, g):
    b, n = g.shape[:2]
    out = fn(g.reshape(b * n, *g.shape[2:]))
    return out.reshape(b, n, *out.shape[1:])


def _broadcast_cat(x, g):
    # image feature [B, C, H, W] placed in front of every object's channels
    n = g.shape[1]
    return torch.cat([x.unsqueeze(1).expand(-1, n, -1, -1, -1), g], 2)


class _GroupResBlock(nn.Module):
    """pre-activation residual block; the projection shortcut is a 3x3 conv (XMem)."""

    def __init__(self, cin, cout):
        super().__init__()
        # registration order (downsample first) matches XMem's state-dict order
        self.downsample = None if cin == cout else nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def flat(self, x):
        y = self.conv2(F.relu(self.conv1(F.relu(x))))
        return y + (x if self.downsample is None else self.downsample(x))

    def forward(self, g):
        return _objwise(self.flat, g)


class _CBAM(nn.Module):
    """channel gate (shared MLP over avg- and max-pooled channels) then spatial gate."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = channels // reduction
        self.ChannelGate = nn.Module()
        # index 0 is a flatten, 2 a ReLU: the Linear layers are .1 and .3
        self.ChannelGate.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(),
                                             nn.Linear(hidden, channels))
        self.SpatialGate = nn.Module()
        self.SpatialGate.spatial = nn.Module()
        self.SpatialGate.spatial.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        mlp = self.ChannelGate.mlp
        h, w = x.shape[-2:]
        avg = F.avg_pool2d(x, (h, w), stride=(h, w))
        mx = F.max_pool2d(x, (h, w), stride=(h, w))
        gate = torch.sigmoid(mlp(avg) + mlp(mx))
        x = x * gate[:, :, None, None]
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], 1)
        return x * torch.sigmoid(self.SpatialGate.spatial.conv(pooled))


class _Fusion(nn.Module):
    """[image feature, group feature] -> res block -> (+CBAM of itself) -> res block."""

    def __init__(self, x_dim, g_dim, mid_dim, out_dim):
        super().__init__()
        self.block1 = _GroupResBlock(x_dim + g_dim, mid_dim)
        self.attention = _CBAM(mid_dim)
        self.block2 = _GroupResBlock(mid_dim, out_dim)

    def forward(self, x, g):
        g = self.block1(_broadcast_cat(x, g))
        g = g + _objwise(self.attention, g)
        return self.block2(g)


def _gru(transform, hidden_dim, g, h):
    """XMem's GRU variant: one 3x3 conv yields forget, update and candidate; the
    candidate does not see the forget-gated state, and the forget gate multiplies the
    kept part: h' = f*h*(1-u) + u*tanh(c)."""
    v = _objwise(transform, torch.cat([g, h], 2))
    f = torch.sigmoid(v[:, :, :hidden_dim])
    u = torch.sigmoid(v[:, :, hidden_dim:2 * hidden_dim])
    c = torch.tanh(v[:, :, 2 * hidden_dim:])
    return f * h * (1 - u) + u * c


def _area(g, factor):
    # XMem: F.interpolate(scale_factor=1/factor, mode='area') on the flattened groups
    return _objwise(lambda t: F.interpolate(t, scale_factor=1 / factor, mode='area'), g)


def _upsample(g, factor):
    return _objwise(lambda t: F.interpolate(t, scale_factor=factor, mode='bilinear',
                                            align_corners=False), g)


def soft_aggregate(prob, dim):
    """STM soft aggregation: background = prod(1 - p), clamp, logit, softmax.
    Returns (logits, probabilities), both with the background first along `dim`."""
    bg = torch.prod(1 - prob, dim=dim, keepdim=True)
    p = torch.cat([bg, prob], dim).clamp(1e-7, 1 - 1e-7)
    logits = torch.log(p / (1 - p))
    return logits, F.softmax(logits, dim=dim)


# ----------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------

class OracleXMem(nn.Module):
    def __init__(self, key_dim=64, value_dim=512, hidden_dim=64, single_object=False):
        super().__init__()
        self.key_dim, self.value_dim, self.hidden_dim = key_dim, value_dim, hidden_dim
        self.single_object = single_object

        # key encoder: ResNet-50 stem + layers 1-3 (layer 1 is called res2)
        ke = nn.Module()
        ke.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        ke.bn1 = nn.BatchNorm2d(64)
        ke.res2 = _res_stage(64, 64, 3, 1, True)        # stride 4, 256 ch
        ke.layer2 = _res_stage(256, 128, 4, 2, True)    # stride 8, 512 ch
        ke.layer3 = _res_stage(512, 256, 6, 2, True)    # stride 16, 1024 ch
        self.key_encoder = ke

        # value encoder: ResNet-18 on [image, mask, others] + fusion with f16 + GRU
        ve = nn.Module()
        ve.conv1 = nn.Conv2d(4 if single_object else 5, 64, 7, stride=2, padding=3, bias=False)
        ve.bn1 = nn.BatchNorm2d(64)
        ve.layer1 = _res_stage(64, 64, 2, 1, False)
        ve.layer2 = _res_stage(64, 128, 2, 2, False)
        ve.layer3 = _res_stage(128, 256, 2, 2, False)
        ve.fuser = _Fusion(1024, 256, value_dim, value_dim)
        if hidden_dim > 0:
            ve.hidden_reinforce = nn.Module()
            ve.hidden_reinforce.transform = nn.Conv2d(value_dim + hidden_dim, hidden_dim * 3, 3, padding=1)
        self.value_encoder = ve

        kp = nn.Module()
        kp.key_proj = nn.Conv2d(1024, key_dim, 3, padding=1)
        kp.d_proj = nn.Conv2d(1024, 1, 3, padding=1)
        kp.e_proj = nn.Conv2d(1024, key_dim, 3, padding=1)
        self.key_proj = kp

        de = nn.Module()
        de.fuser = _Fusion(1024, value_dim + hidden_dim, 512, 512)
        if hidden_dim > 0:
            hu = nn.Module()
            hu.g16_conv = nn.Conv2d(512, 256, 1)
            hu.g8_conv = nn.Conv2d(256, 256, 1)
            hu.g4_conv = nn.Conv2d(256 + 1, 256, 1)
            hu.transform = nn.Conv2d(256 + hidden_dim, hidden_dim * 3, 3, padding=1)
            de.hidden_update = hu
        for name, skip_dim, up_dim, out_dim in (('up_16_8', 512, 512, 256), ('up_8_4', 256, 256, 256)):
            up = nn.Module()
            up.skip_conv = nn.Conv2d(skip_dim, up_dim, 3, padding=1)
            up.out_conv = _GroupResBlock(up_dim, out_dim)
            setattr(de, name, up)
        de.pred = nn.Conv2d(256, 1, 3, padding=1)
        self.decoder = de

    # -- keys --------------------------------------------------------------------
    def encode_key(self, frame, need_sk=True, need_ek=True):
        ke, kp = self.key_encoder, self.key_proj
        x = F.relu(ke.bn1(ke.conv1(frame)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        f4 = ke.res2(x)
        f8 = ke.layer2(f4)
        f16 = ke.layer3(f8)
        key = kp.key_proj(f16)
        shrinkage = kp.d_proj(f16) ** 2 + 1 if need_sk else None
        selection = torch.sigmoid(kp.e_proj(f16)) if need_ek else None
        return key, shrinkage, selection, f16, f8, f4

    # -- values ------------------------------------------------------------------
    def encode_value(self, frame, f16, h16, masks, is_deep_update=True):
        ve = self.value_encoder
        n = masks.shape[1]
        if n == 1:
            others = torch.zeros_like(masks)
        else:
            # sum over the other objects (summing the selected channels, as XMem does)
            others = torch.cat([masks[:, [j for j in range(n) if j != i]].sum(dim=1, keepdim=True)
                                for i in range(n)], 1)
        g = masks.unsqueeze(2) if self.single_object else torch.stack([masks, others], 2)
        g = _broadcast_cat(frame, g)                       # [B, N, 3+k, H, W]
        b = g.shape[0]
        t = g.flatten(0, 1)
        t = ve.bn1(ve.conv1(t))
        t = F.relu(F.max_pool2d(t, 3, stride=2, padding=1))   # pool BEFORE relu here
        t = ve.layer3(ve.layer2(ve.layer1(t)))
        g = t.view(b, n, *t.shape[1:])
        g = ve.fuser(f16, g)
        if is_deep_update and self.hidden_dim > 0:
            h16 = _gru(ve.hidden_reinforce.transform, self.hidden_dim, g, h16)
        return g, h16

    # -- decoding ----------------------------------------------------------------
    def _decode(self, f16, f8, f4, hidden, readout, h_out):
        de = self.decoder
        b, n = readout.shape[:2]
        g_in = torch.cat([readout, hidden], 2) if self.hidden_dim > 0 else readout
        g16 = de.fuser(f16, g_in)
        g8 = de.up_16_8.out_conv(de.up_16_8.skip_conv(f8).unsqueeze(1) + _upsample(g16, 2))
        g4 = de.up_8_4.out_conv(de.up_8_4.skip_conv(f4).unsqueeze(1) + _upsample(g8, 2))
        logits = de.pred(F.relu(g4.flatten(0, 1)))         # [B*N, 1, H/4, W/4]
        if h_out and self.hidden_dim > 0:
            hu = de.hidden_update
            g4 = torch.cat([g4, logits.view(b, n, 1, *logits.shape[-2:])], 2)
            mixed = (_objwise(hu.g16_conv, g16) + _objwise(hu.g8_conv, _area(g8, 2))
                     + _objwise(hu.g4_conv, _area(g4, 4)))
            hidden = _gru(hu.transform, self.hidden_dim, mixed, hidden)
        else:
            hidden = None
        logits = F.interpolate(logits, scale_factor=4, mode='bilinear', align_corners=False)
        return hidden, logits.view(b, n, *logits.shape[-2:])

    def segment(self, multi_scale_features, memory_readout, hidden_state, h_out=True, strip_bg=True,
                selector=None):
        """selector (training only, XMem's `selector`): None, or per-object weights
        [B, N] (or anything broadcasting to [B, N, 1, 1]) multiplied into the sigmoid
        probabilities before the soft aggregation, zeroing padded objects."""
        f16, f8, f4 = multi_scale_features
        hidden, logits = self._decode(f16, f8, f4, hidden_state, memory_readout, h_out)
        prob = torch.sigmoid(logits)
        if selector is not None:
            if selector.dim() == 2:
                selector = selector.reshape(*selector.shape, 1, 1)
            prob = prob * selector
        logits, prob = soft_aggregate(prob, dim=1)
        if strip_bg:
            prob = prob[:, 1:]
        return hidden, logits, prob


# ----------------------------------------------------------------------------------
# Memory reading
# ----------------------------------------------------------------------------------

def get_similarity(mk, ms, qk, qe):
    """Negative (selection-weighted) squared distance, scaled by the memory shrinkage and
    1/sqrt(CK). mk [B,CK,N...], ms [B,1,N...] or None, qk/qe [B,CK,HW...] (qe may be
    None). Returns [B, N, HW]."""
    ck = mk.shape[1]
    mk = mk.flatten(2)
    qk = qk.flatten(2)
    if qe is not None:
        qe = qe.flatten(2)
        mkt = mk.transpose(1, 2)
        sim = 2 * (mkt @ (qk * qe)) - mkt.pow(2) @ qe - (qe * qk.pow(2)).sum(1, keepdim=True)
    else:
        sim = 2 * (mk.transpose(1, 2) @ qk) - mk.pow(2).sum(1).unsqueeze(2)
    if ms is not None:
        sim = sim * ms.flatten(1).unsqueeze(2)
    return sim / math.sqrt(ck)


def do_softmax(similarity, top_k=None, return_usage=False):
    """Softmax over the memory axis (dim 1). With top_k: only the k largest entries per
    query survive; they are exponentiated WITHOUT subtracting the maximum, normalised,
    and scattered back into zeros. return_usage adds the per-memory-element sum over
    queries."""
    if top_k is not None:
        vals, idx = torch.topk(similarity, k=top_k, dim=1)
        e = vals.exp()
        e = e / e.sum(dim=1, keepdim=True)
        affinity = torch.zeros_like(similarity).scatter_(1, idx, e)
    else:
        e = torch.exp(similarity - similarity.max(dim=1, keepdim=True)[0])
        affinity = e / e.sum(dim=1, keepdim=True)
    if return_usage:
        return affinity, affinity.sum(dim=2)
    return affinity


# ----------------------------------------------------------------------------------
# Memory banks and the inference loop
# ----------------------------------------------------------------------------------

class _Bank:
    """One key/value store (working or long-term memory). Keys, shrinkage, selection and
    usage counters are single [1, C, N] tensors shared by all objects; values are kept per
    object group ([objects, CV, n_g]) and a later group owns only the newest n_g keys."""

    def __init__(self, count_usage):
        self.count_usage = count_usage
        self.k = self.s = self.e = None
        self.use = self.life = None
        self.v = []
        self.groups = []
        self._seen = []

    @property
    def size(self):
        return 0 if self.k is None else self.k.shape[-1]

    def vsize(self, gi):
        return self.v[gi].shape[2]

    def append(self, key, value, shrinkage, selection, objects):
        n = key.shape[2]
        fresh_use = torch.zeros((key.shape[0], 1, n), dtype=torch.float32, device=key.device)
        fresh_life = fresh_use + 1e-7
        if self.k is None:
            self.k, self.s, self.e = key, shrinkage, selection
            if self.count_usage:
                self.use, self.life = fresh_use, fresh_life
        else:
            self.k = torch.cat([self.k, key], -1)
            if shrinkage is not None:
                self.s = torch.cat([self.s, shrinkage], -1)
            if selection is not None:
                self.e = torch.cat([self.e, selection], -1)
            if self.count_usage:
                self.use = torch.cat([self.use, fresh_use], -1)
                self.life = torch.cat([self.life, fresh_life], -1)

        if objects is not None:
            # working memory: `value` holds every object; labels are 1-based
            left = [o - 1 for o in objects]
            for gi, members in enumerate(self.groups):
                for o in members:
                    left.remove(o)
                self.v[gi] = torch.cat([self.v[gi], value[members]], -1)
            if left:
                self.v.append(value[left])
                self.groups.append(list(left))
                self._seen.extend(left)
                assert sorted(self._seen) == self._seen, 'objects must arrive in sorted order'
        else:
            # long-term memory: one entry per group, None = nothing for that group.
            # (Like XMem, a new group is appended at the next free slot.)
            for gi, gv in enumerate(value):
                if gv is None:
                    continue
                if gi < len(self.v):
                    self.v[gi] = torch.cat([self.v[gi], gv], -1)
                else:
                    self.v.append(gv)

    def add_usage(self, usage):
        if not self.count_usage:
            return
        self.use = self.use + usage.view_as(self.use)
        self.life = self.life + 1

    def usage(self):
        if not self.count_usage:
            raise RuntimeError('usage is not counted in this memory')
        return self.use / self.life

    @staticmethod
    def _cut(t, a, b):
        # keep t[..., :a] and t[..., b:]; b == 0 means "to the end" (drop everything after a)
        if b == 0:
            return t[:, :, :a]
        return torch.cat([t[:, :, :a], t[:, :, b:]], -1)

    def drop_range(self, a, b, min_size):
        self.k = self._cut(self.k, a, b)
        if self.count_usage:
            self.use = self._cut(self.use, a, b)
            self.life = self._cut(self.life, a, b)
        if self.s is not None:
            self.s = self._cut(self.s, a, b)
        if self.e is not None:
            self.e = self._cut(self.e, a, b)
        # groups shorter than min_size were not consolidated and stay untouched
        for gi in range(len(self.v)):
            if self.v[gi].shape[-1] >= min_size:
                self.v[gi] = self._cut(self.v[gi], a, b)

    def slice_range(self, a, b):
        # (keys, shrinkage, selection, usage) over [a, b); b == 0 means "to the end"
        sl = slice(a, None) if b == 0 else slice(a, b)
        pick = lambda t: None if t is None else t[:, :, sl]
        return pick(self.k), pick(self.s), pick(self.e), self.usage()[:, :, sl]

    def prune(self, max_size):
        # drop the least used elements so that about max_size remain (ties drop together)
        u = self.usage().flatten()
        lowest = torch.topk(u, k=self.size - max_size, largest=False, sorted=True)[0]
        keep = u > lowest[-1]
        self.k = self.k[:, :, keep]
        self.s = None if self.s is None else self.s[:, :, keep]
        self.e = None if self.e is None else self.e[:, :, keep]
        if len(self.v) > 1:
            raise NotImplementedError('XMem cannot remove long-term features with several object groups')
        for gi in range(len(self.v)):
            self.v[gi] = self.v[gi][:, :, keep]
        self.use = self.use[:, :, keep]
        self.life = self.life[:, :, keep]


def pad_divide_by(x, d):
    """zero-pad the last two dims up to multiples of d, centred (extra pixel bottom/right).
    Returns (padded, (left, right, top, bottom))."""
    h, w = x.shape[-2:]
    ph = (d - h % d) % d
    pw = (d - w % d) % d
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return F.pad(x, pad), pad


def unpad(x, pad):
    left, right, top, bottom = pad
    if top + bottom > 0:
        x = x[..., top:x.shape[-2] - bottom, :]
    if left + right > 0:
        x = x[..., left:x.shape[-1] - right]
    return x


class OracleXMemProcessor:
    """XMem's test-time loop (InferenceCore + MemoryManager + two key/value stores)."""

    def __init__(self, network, mem_every=5, top_k=30, max_mid_term_frames=10, min_mid_term_frames=5,
                 num_prototypes=128, max_long_term_elements=10000, enable_long_term=True,
                 enable_long_term_count_usage=True, deep_update_every=-1):
        self.net = network
        self.hidden_dim = network.hidden_dim
        self.mem_every = mem_every
        self.top_k = top_k
        self.max_mt_frames = max_mid_term_frames
        self.min_mt_frames = min_mid_term_frames
        self.num_prototypes = num_prototypes
        self.max_long_elements = max_long_term_elements
        self.enable_long_term = enable_long_term
        self.count_long_usage = enable_long_term_count_usage
        self.deep_update_every = deep_update_every
        self.deep_sync = deep_update_every < 0
        self.all_labels = None
        self.clear_memory()

    def clear_memory(self):
        self.ti = -1
        self.last_mem_ti = 0
        self.last_deep_ti = -self.deep_update_every
        self.work = _Bank(self.enable_long_term)
        self.long = _Bank(self.count_long_usage) if self.enable_long_term else None
        self.hidden = None
        self.hw = None
        self.cv = None
        self.last_readout = None
        self.consolidations = 0

    @property
    def work_size(self):
        return self.work.size

    @property
    def long_size(self):
        return 0 if self.long is None else self.long.size

    def set_all_labels(self, labels):
        self.all_labels = labels

    # -- memory read -------------------------------------------------------------
    def _read(self, qk, qe):
        h, w = qk.shape[-2:]
        qk = qk.flatten(2)
        qe = None if qe is None else qe.flatten(2)
        wm, lm, k = self.work, self.long, self.top_k
        ng = len(wm.v)
        if self.enable_long_term and lm.k is not None:
            nl = lm.size
            sim = get_similarity(torch.cat([lm.k, wm.k], -1), torch.cat([lm.s, wm.s], -1), qk, qe)
            sim_l, sim_w = sim[:, :nl], sim[:, nl:]
            # group 0 owns every key, so its softmax also yields the usage statistics
            aff0, usage = do_softmax(torch.cat([sim_l[:, -lm.vsize(0):], sim_w], 1), top_k=k,
                                     return_usage=True)
            affs = [aff0]
            for gi in range(1, ng):
                if gi < len(lm.v):
                    s = torch.cat([sim_l[:, -lm.vsize(gi):], sim_w[:, -wm.vsize(gi):]], 1)
                else:
                    s = sim_w[:, -wm.vsize(gi):]
                affs.append(do_softmax(s, top_k=k))
            values = [torch.cat([lm.v[gi], gv], -1) if gi < len(lm.v) else gv
                      for gi, gv in enumerate(wm.v)]
            wm.add_usage(usage[:, nl:].flatten())
            if self.count_long_usage:
                lm.add_usage(usage[:, :nl].flatten())
        else:
            sim = get_similarity(wm.k, wm.s, qk, qe)
            if self.enable_long_term:
                aff0, usage = do_softmax(sim, top_k=k, return_usage=True)
                wm.add_usage(usage.flatten())
            else:
                aff0 = do_softmax(sim, top_k=k)
            affs = [aff0] + [do_softmax(sim[:, -wm.vsize(gi):], top_k=k) for gi in range(1, ng)]
            values = wm.v
        out = torch.cat([gv @ affs[gi] for gi, gv in enumerate(values)], 0)
        return out.view(out.shape[0], self.cv, h, w)

    # -- memory write ------------------------------------------------------------
    def _write(self, key, shrinkage, value, objects, selection):
        if self.hw is None:
            self.hw = key.shape[-2] * key.shape[-1]
            self.min_work = self.min_mt_frames * self.hw
            self.max_work = self.max_mt_frames * self.hw
        key = key.flatten(2)
        shrinkage = shrinkage.flatten(2)
        value = value[0].flatten(2)
        self.cv = value.shape[1]
        selection = None if selection is None else selection.flatten(2)
        self.work.append(key, value, shrinkage, selection, objects)
        if self.enable_long_term and self.work.size >= self.max_work:
            if self.long.size >= self.max_long_elements - self.num_prototypes:
                self.long.prune(self.max_long_elements - self.num_prototypes)
            self._consolidate()

    def _consolidate(self):
        hw, wm = self.hw, self.work
        a, b = hw, hw - self.min_work       # candidates: after the first frame, before the newest min-1 frames
        total = wm.size
        cand_values = []
        for gv in wm.v:
            n_g = gv.shape[-1]
            if n_g == total:
                cand_values.append(gv[:, :, a:b])
            else:
                assert hw <= n_g < total
                cand_values.append(gv[:, :, a:b] if n_g > self.min_work + hw else None)

        ck, cs, ce, usage = wm.slice_range(a, b)
        n = ck.shape[-1]
        chosen = torch.topk(usage, k=self.num_prototypes, dim=-1, sorted=True)[1].flatten()
        # a group only has values for the newest candidates: prototypes outside are invalid
        valid = [None if gv is None else chosen >= (n - gv.shape[2]) for gv in cand_values]
        pk = ck[:, :, chosen]
        pe = None if ce is None else ce[:, :, chosen]
        sim = get_similarity(ck, cs, pk, pe)
        affs = []
        for gi, gv in enumerate(cand_values):
            if gv is None:
                affs.append(None)
                continue
            aff = do_softmax(sim[:, -gv.shape[2]:, valid[gi]])
            affs.append(aff if aff.shape[-1] > 0 else None)
        pv = [None if affs[gi] is None else gv @ affs[gi] for gi, gv in enumerate(cand_values)]
        ps = None if cs is None else cs @ affs[0]

        wm.drop_range(a, b, min_size=self.min_work + hw)
        self.long.append(pk, pv, ps, None, None)
        self.consolidations += 1

    def _new_hidden(self, n, key):
        h, w = key.shape[-2:]
        if self.hidden is None:
            self.hidden = torch.zeros((1, n, self.hidden_dim, h, w), device=key.device)
        elif self.hidden.shape[1] != n:
            extra = torch.zeros((1, n - self.hidden.shape[1], self.hidden_dim, h, w), device=key.device)
            self.hidden = torch.cat([self.hidden, extra], 1)
        assert self.hidden.shape[1] == n

    # -- one frame ---------------------------------------------------------------
    def step(self, image, mask=None, valid_labels=None, end=False):
        """image [3,H,W] (normalised); mask [num_objects,H,W] or None.
        Returns probabilities with background first, [num_objects+1, H, W]."""
        self.ti += 1
        image, pad = pad_divide_by(image, 16)
        image = image.unsqueeze(0)

        mem_frame = (self.ti - self.last_mem_ti >= self.mem_every or mask is not None) and not end
        need_segment = self.ti > 0 and (valid_labels is None or len(self.all_labels) != len(valid_labels))
        if self.deep_sync:
            deep = mem_frame and not end
        else:
            deep = (self.ti - self.last_deep_ti >= self.deep_update_every) and not end
        normal = (not self.deep_sync or not deep) and not end

        key, shrinkage, selection, f16, f8, f4 = self.net.encode_key(
            image, need_ek=(self.enable_long_term or need_segment), need_sk=mem_frame)

        self.last_readout = None
        prob = fg = None
        if need_segment:
            readout = self._read(key, selection)
            self.last_readout = readout
            hidden, _, p = self.net.segment((f16, f8, f4), readout.unsqueeze(0), self.hidden,
                                            h_out=normal, strip_bg=False)
            prob = p[0]
            fg = prob[1:]            # a view: edits below also touch `prob`
            if normal:
                self.hidden = hidden

        if mask is not None:
            mask, _ = pad_divide_by(mask, 16)
            if fg is not None:
                # the given mask wins where it is set; untouched (old) objects keep the
                # prediction, zeroed inside the given mask
                fg[:, mask.sum(0) > 0.5] = 0
                mask = mask.type_as(fg)
                if valid_labels is not None:
                    keep = [i for i in range(fg.shape[0]) if (i + 1) not in valid_labels]
                    mask[keep] = fg[keep]
            prob = soft_aggregate(mask, dim=0)[1]
            self._new_hidden(len(self.all_labels), key)

        if mem_frame:
            value, hidden = self.net.encode_value(image, f16, self.hidden, prob[1:].unsqueeze(0),
                                                  is_deep_update=deep)
            self._write(key, shrinkage, value, self.all_labels,
                        selection if self.enable_long_term else None)
            self.last_mem_ti = self.ti
            if deep:
                self.hidden = hidden
                self.last_deep_ti = self.ti

        return unpad(prob, pad)


# ----------------------------------------------------------------------------------
# Data helpers
# ----------------------------------------------------------------------------------

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def preprocess(rgb_uint8_hwc, size=480):
    """uint8 [H,W,3] -> float [3,H',W']: /255, ImageNet normalisation, then the shorter
    side resized to `size` (bilinear, align_corners=False, no antialias; long side
    int(size*long/short)). size < 0 keeps the resolution."""
    x = torch.as_tensor(rgb_uint8_hwc).permute(2, 0, 1).float() / 255
    mean = torch.tensor(_MEAN, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(_STD, dtype=x.dtype).view(3, 1, 1)
    x = (x - mean) / std
    if size < 0:
        return x
    h, w = x.shape[-2:]
    short, long_ = (h, w) if h <= w else (w, h)
    new_long = int(size * long_ / short)
    out = (size, new_long) if h <= w else (new_long, size)
    if out == (h, w):
        return x
    return F.interpolate(x[None], size=out, mode='bilinear', align_corners=False, antialias=False)[0]


def resize_mask(mask, size):
    """nearest resize so that the shorter side becomes `size` (XMem's
    VideoReader.resize_mask; sizes int(h/min*size), int(w/min*size)). Accepts
    [N,H,W] or [B,N,H,W]."""
    squeeze = mask.dim() == 3
    m = mask[None] if squeeze else mask
    h, w = m.shape[-2:]
    low = min(h, w)
    m = F.interpolate(m, (int(h / low * size), int(w / low * size)), mode='nearest')
    return m[0] if squeeze else m


# ----------------------------------------------------------------------------------
# Random weights
# ----------------------------------------------------------------------------------

BRANCH_DAMPING = 0.2
SHORTCUT_GAIN = 0.5
HEAD_GAINS = {
    'key_proj.key_proj': 0.15, 'key_proj.e_proj': 0.15, 'key_proj.d_proj': 0.2,
    'decoder.pred': 0.4,
    'decoder.hidden_update.g16_conv': 0.3, 'decoder.hidden_update.g8_conv': 0.3,
    'decoder.hidden_update.g4_conv': 0.3,
    'transform': 0.2,
}


def randomize(model, seed):
    """Deterministic random values for every parameter and buffer, in eval mode.
    Conv / linear weights ~ N(0, 2/fan_in), biases U(-0.1, 0.1); batch norm: running
    mean U(-0.5, 0.5), running var U(0.5, 1.5), weight U(0.5, 1.5), bias U(-0.2, 0.2).
    Then the last layer of every residual branch (ResNet units: the closing batch norm's
    weight; XMem's group residual blocks: conv2's weight) is multiplied by
    BRANCH_DAMPING so activations stay O(1) through the ~60 layers; the group blocks'
    3x3 shortcut convs are multiplied by SHORTCUT_GAIN and the output heads (key,
    shrinkage, selection, mask logits, GRU inputs) by HEAD_GAINS, which keeps keys near
    unit scale (top-k similarities of order -1..-10) and gates/sigmoids unsaturated.
    Conv biases are drawn before these scalings and are left as drawn. The random stream
    is drawn module by module in registration order, so a seed fixes every value."""
    g = torch.Generator().manual_seed(int(seed))

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    uniform(m.bias, -0.1, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                uniform(m.running_mean, -0.5, 0.5)
                uniform(m.running_var, 0.5, 1.5)
                uniform(m.weight, 0.5, 1.5)
                uniform(m.bias, -0.2, 0.2)
        # Damp every residual branch where it rejoins its shortcut: otherwise each of the
        # ~30 residual units roughly doubles the activation variance and the keys reach
        # the thousands, which underflows the top-k exponentials (no max subtraction).
        for m in model.modules():
            if isinstance(m, _ResUnit):
                (m.bn3 if m.bottleneck else m.bn2).weight.mul_(BRANCH_DAMPING)
            elif isinstance(m, _GroupResBlock):
                m.conv2.weight.mul_(BRANCH_DAMPING)
                if m.downsample is not None:
                    m.downsample.weight.mul_(SHORTCUT_GAIN)
        # Output heads: keep keys/shrinkage, GRU gates and mask logits out of saturation.
        for name, m in model.named_modules():
            gain = HEAD_GAINS.get(name)
            if gain is None and name.endswith(('hidden_update.transform', 'hidden_reinforce.transform')):
                gain = HEAD_GAINS['transform']
            if gain is not None:
                m.weight.mul_(gain)
    return model.eval()


# ----------------------------------------------------------------------------------
# Training: XMem's forward pass (XMemTrainer.do_pass) and losses (model/losses.py)
# ----------------------------------------------------------------------------------
# XMem trains with the network in eval() mode (frozen batch-norm statistics), which is
# the mode randomize() leaves the model in.

def xmem_read_memory(query_key, query_selection, memory_key, memory_shrinkage, memory_value):
    """XMem.read_memory (training): affinity = full softmax over every memory element
    (maximum subtracted, no top-k) of get_similarity, then a weighted sum of the values.
    query_key [B,CK,H,W], query_selection [B,CK,H,W] or None, memory_key [B,CK,T,H,W],
    memory_shrinkage [B,1,T,H,W] or None, memory_value [B,N,CV,T,H,W] -> [B,N,CV,H,W]."""
    b, n, cv = memory_value.shape[:3]
    affinity = do_softmax(get_similarity(memory_key, memory_shrinkage, query_key, query_selection))
    mv = memory_value.flatten(1, 2)                         # [B, N*CV, T, H, W]
    mem = torch.bmm(mv.reshape(b, n * cv, -1), affinity)    # [B, N*CV, HW]
    return mem.view(b, n, cv, *query_key.shape[-2:])


def _ref_index_list(ref_indices, ti, num_ref_frames):
    if isinstance(ref_indices, dict):
        return ref_indices[ti]
    return ref_indices[ti - num_ref_frames - 1]


def xmem_training_pass(net, frames, first_frame_gt, selector, num_ref_frames, deep_updates,
                       ref_indices=None):
    """The forward half of XMemTrainer.do_pass (no DDP / AMP / logging).

    frames [B,T,3,H,W]; first_frame_gt [B,1,N,H,W] float; selector [B,N] (1 = filled
    object, 0 = padding); deep_updates: T-2 booleans, entry ti-1 for frame ti in 1..T-2
    (XMem: np.random.rand() < deep_update_prob); ref_indices: for every ti >
    num_ref_frames, B index lists of length num_ref_frames into the frames encoded so far
    (XMem: [0] + (randperm(ti-1)[:num_ref_frames-1] + 1)); given either as a dict keyed
    by ti or as a list whose entry k belongs to ti = num_ref_frames + 1 + k. None draws
    them as XMem does, from torch's global generator.
    Returns {'logits_ti': [B,N+1,H,W], 'masks_ti': [B,N,H,W]} for ti in 1..T-1."""
    b, t = frames.shape[:2]
    num_objects = first_frame_gt.shape[2]
    sel = selector.unsqueeze(2).unsqueeze(2)

    # image features of every frame at once; key/shrinkage/selection as [B, C, T, h, w],
    # f16/f8/f4 as [B, T, C, h, w]
    key, shrinkage, selection, f16, f8, f4 = net.encode_key(frames.flatten(0, 1))
    key, shrinkage, selection = [x.view(b, t, *x.shape[-3:]).transpose(1, 2).contiguous()
                                 for x in (key, shrinkage, selection)]
    f16, f8, f4 = [x.view(b, t, *x.shape[-3:]) for x in (f16, f8, f4)]

    hidden = torch.zeros((b, num_objects, net.hidden_dim, *key.shape[-2:]),
                         dtype=frames.dtype, device=frames.device)
    v16, hidden = net.encode_value(frames[:, 0], f16[:, 0], hidden, first_frame_gt[:, 0])
    values = v16.unsqueeze(3)                               # [B, N, CV, T, h, w]

    out = {}
    for ti in range(1, t):
        if ti <= num_ref_frames:
            ref_values, ref_keys, ref_shrinkage = values, key[:, :, :ti], shrinkage[:, :, :ti]
        else:
            if ref_indices is None:
                idx = [torch.cat([torch.zeros(1, dtype=torch.int64),
                                  torch.randperm(ti - 1)[:num_ref_frames - 1] + 1]) for _ in range(b)]
            else:
                idx = [torch.as_tensor(list(i), dtype=torch.int64)
                       for i in _ref_index_list(ref_indices, ti, num_ref_frames)]
                assert len(idx) == b
            ref_values = torch.stack([values[bi].index_select(2, idx[bi]) for bi in range(b)], 0)
            ref_keys = torch.stack([key[bi].index_select(1, idx[bi]) for bi in range(b)], 0)
            ref_shrinkage = torch.stack([shrinkage[bi].index_select(1, idx[bi]) for bi in range(b)], 0)

        readout = xmem_read_memory(key[:, :, ti], selection[:, :, ti], ref_keys, ref_shrinkage, ref_values)
        last = ti == t - 1
        hidden, logits, masks = net.segment((f16[:, ti], f8[:, ti], f4[:, ti]), readout, hidden,
                                            h_out=not last, selector=sel)
        if not last:    # the last frame is never encoded
            v16, hidden = net.encode_value(frames[:, ti], f16[:, ti], hidden, masks,
                                           is_deep_update=bool(deep_updates[ti - 1]))
            values = torch.cat([values, v16.unsqueeze(3)], 3)
        out[f'masks_{ti}'] = masks
        out[f'logits_{ti}'] = logits
    return out


def bootstrapped_ce(logits, target, it, start_warm, end_warm, top_p=0.15):
    """XMem's BootstrappedCE: plain mean cross-entropy (p = 1.0) while it < start_warm;
    otherwise the mean of the int(num_pixels * p) largest per-pixel losses, p falling
    linearly from 1 (it = start_warm) to top_p (it = end_warm), top_p after end_warm.
    logits [B,C,H,W], target [B,H,W] int64. Returns (loss, p)."""
    if it < start_warm:
        return F.cross_entropy(logits, target), 1.0
    raw = F.cross_entropy(logits, target, reduction='none').view(-1)
    if it > end_warm:
        p = top_p
    else:
        p = top_p + (1 - top_p) * ((end_warm - it) / (end_warm - start_warm))
    k = int(raw.numel() * p)
    return torch.topk(raw, k, sorted=False)[0].mean(), p


def dice_loss(masks, cls_gt):
    """XMem's dice_loss: masks [B,N,H,W] (foreground probabilities), cls_gt [B,H,W]
    (0 = background, i+1 = object i). Per (item, object): 1 - (2*sum(m*g) + 1) /
    (sum(m) + sum(g) + 1); the mean over all B*N pairs, padded objects included."""
    losses = []
    for i in range(masks.shape[1]):
        m = masks[:, i].flatten(1)
        g = (cls_gt == (i + 1)).float().flatten(1)
        losses.append(1 - (2 * (m * g).sum(-1) + 1) / (m.sum(-1) + g.sum(-1) + 1))
    return torch.cat(losses).mean()


def xmem_losses(out, cls_gt, num_filled_objects, it, start_warm, end_warm):
    """XMem's LossComputer.compute. out: xmem_training_pass's dict; cls_gt [B,T,1,H,W]
    int64; num_filled_objects: B ints. Cross-entropy per batch item over its first
    num_filled_objects[bi] + 1 logit channels (background + filled objects), each item's
    loss divided by B; Dice over all N object channels of the whole batch. total_loss =
    sum over ti of ce_loss_ti + dice_loss_ti; p = mean of the per-item p values."""
    b, t = cls_gt.shape[:2]
    losses = {'total_loss': 0, 'p': 0}
    for ti in range(1, t):
        ce = 0
        for bi in range(b):
            loss, p = bootstrapped_ce(out[f'logits_{ti}'][bi:bi + 1, :num_filled_objects[bi] + 1],
                                      cls_gt[bi:bi + 1, ti, 0], it, start_warm, end_warm)
            losses['p'] += p / b / (t - 1)
            ce = ce + loss / b
        losses[f'ce_loss_{ti}'] = ce
        losses['total_loss'] = losses['total_loss'] + ce
        losses[f'dice_loss_{ti}'] = dice_loss(out[f'masks_{ti}'], cls_gt[:, ti, 0])
        losses['total_loss'] = losses['total_loss'] + losses[f'dice_loss_{ti}']
    return losses
