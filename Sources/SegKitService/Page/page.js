// SegKit service page: image segmentation and interactive video object segmentation.
// Plain ES2020 with no dependencies, so the page works offline from the binary's files.
'use strict';

const $ = (id) => document.getElementById(id);
const on = (id, type, handler) => $(id).addEventListener(type, handler);
const setText = (id, text) => { $(id).textContent = text; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- API access

// A token in the page's URL is sent as a bearer header; images from the API are therefore
// fetched as blobs (an <img src> could not carry the header).
const token = new URLSearchParams(location.search).get('token');

class ApiError extends Error {
  constructor(message, status, cap) {
    super(message);
    Object.assign(this, { status, cap });
  }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token) headers.set('Authorization', `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(`network error: the service could not be reached (${error.message})`, 0);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

// The service answers errors as {"error": message, "cap": limit}; anything else is shown as text.
async function errorFrom(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') return new ApiError(body.error, response.status, body.cap);
  } catch { /* not JSON */ }
  const detail = text.trim() ? `: ${text.trim().slice(0, 200)}` : '';
  return new ApiError(`HTTP ${response.status} ${response.statusText}${detail}`, response.status);
}

const apiJSON = async (path, options) => (await api(path, options)).json();
const apiBlob = async (path, options) => (await api(path, options)).blob();
const postBody = (body, type) => ({ method: 'POST', body, headers: { 'Content-Type': type || 'application/octet-stream' } });

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

// ---------------------------------------------------------------- error banner

function showError(error, context) {
  let text;
  if (error instanceof ApiError) text = error.cap ? `${error.message} (${error.cap})` : error.message;
  else text = String((error && error.message) || error);
  setText('error-message', context ? `${context}: ${text}` : text);
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  setText('error-message', '');
}

// ---------------------------------------------------------------- COCO run-length encoding

// Runs count pixels column by column (index p is row p % H, column floor(p / H)), starting
// with a run of zeros. Masks here are row-major arrays of 0/1.
function rleDecode(rle) {
  const [height, width] = rle.size;
  const runs = Array.isArray(rle.counts) ? rle.counts : rleRuns(rle.counts);
  const mask = new Uint8Array(height * width);
  let p = 0;
  runs.forEach((run, i) => {
    if (i % 2 === 1) {
      const end = Math.min(p + run, mask.length);
      for (let q = p; q < end; q++) mask[(q % height) * width + Math.floor(q / height)] = 1;
    }
    p += run;
  });
  return mask;
}

// The compressed string form: 5 bits a character, runs after the second stored as differences.
function rleRuns(text) {
  const runs = [];
  let i = 0;
  while (i < text.length) {
    let x = 0, k = 0, more = true;
    while (more) {
      const c = text.charCodeAt(i++) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      k++;
      if (!more && (c & 0x10) && 5 * k < 32) x |= -1 << (5 * k);
    }
    if (runs.length > 2) x += runs[runs.length - 2];
    runs.push(x);
  }
  return runs;
}

function rleEncode(mask, height, width) {
  const runs = [];
  let value = 0, run = 0;
  for (let col = 0; col < width; col++) {
    for (let row = 0; row < height; row++) {
      const v = mask[row * width + col] ? 1 : 0;
      if (v !== value) { runs.push(run); run = 0; value = v; }
      run++;
    }
  }
  runs.push(run);
  const chars = [];
  runs.forEach((_, i) => {
    let x = i > 2 ? runs[i] - runs[i - 2] : runs[i];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(String.fromCharCode(c + 48));
    }
  });
  return { size: [height, width], counts: chars.join('') };
}

// ---------------------------------------------------------------- Pascal VOC palette

function vocColor(id) {
  let r = 0, g = 0, b = 0, c = id;
  for (let j = 0; j < 8; j++) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return [r, g, b];
}

const VOC = Array.from({ length: 256 }, (_, id) => vocColor(id));
// Colour → object id, to read the service's palette mask PNGs back as ids.
const VOC_IDS = new Map(VOC.map(([r, g, b], id) => [(r << 16) | (g << 8) | b, id]));
const css = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

// ---------------------------------------------------------------- shared helpers

let models = [];
let videoAvailable = false;

// A canvas's pixel under a pointer event: its CSS box may be scaled to any size.
function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) * canvas.width) / rect.width);
  const y = Math.floor(((event.clientY - rect.top) * canvas.height) / rect.height);
  return [Math.min(Math.max(x, 0), canvas.width - 1), Math.min(Math.max(y, 0), canvas.height - 1)];
}

// Size a stage (the box both canvases fill) to the space it has, keeping the aspect ratio;
// small frames are scaled up to at least minWidth so they stay easy to paint on.
function fitStage(stage, width, height, maxHeight, minWidth = 0) {
  stage.classList.remove('empty');
  const available = stage.parentElement.clientWidth || 800;
  let shown = width * Math.min(available / width, maxHeight / height);
  if (shown < minWidth) shown = Math.min(minWidth, available);
  const scale = shown / width;
  stage.style.width = `${Math.round(shown)}px`;
  stage.style.height = `${Math.round(height * scale)}px`;
  stage.classList.toggle('pixelated', scale > 1);
}

function sizeCanvases(ids, width, height) {
  for (const id of ids) Object.assign($(id), { width, height });
}

// The label map of a /v1/segment JSON answer: one class id per pixel (-1 where no mask covers it).
function labelsOf(result) {
  const labels = new Int16Array(result.width * result.height).fill(-1);
  for (const mask of result.masks || []) {
    const bits = rleDecode(mask.rle);
    for (let i = 0; i < bits.length; i++) if (bits[i]) labels[i] = mask.id;
  }
  return labels;
}

function segmentPath(model, format = 'json') {
  return `/v1/segment?${model ? `model=${encodeURIComponent(model.name)}&` : ''}format=${format}`;
}

function selectedModel() {
  return models.find((m) => m.name === $('model').value);
}

// ---------------------------------------------------------------- image section

const picture = { file: null, labels: null, width: 0, height: 0, names: new Map() };

async function loadModels() {
  const select = $('model');
  try {
    const listing = await apiJSON('/v1/models');
    models = listing.models || [];
    videoAvailable = Boolean(listing.video);
    select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.architecture}, ${m.classes.length} classes)`, m.name)));
    if (!models.length) {
      select.add(new Option('No image models loaded', ''));
      setText('image-status', 'The service was started without image models (--run).');
    }
    select.disabled = $('image-file').disabled = !models.length;
    if (models.length) setText('image-status', '');
    const video = videoAvailable ? `video: ${listing.video}` : 'no video model';
    setText('service-status', `${models.length} image model${models.length === 1 ? '' : 's'} · ${video}`);
    $('video-note').hidden = videoAvailable;
  } catch (error) {
    showError(error, 'Loading the model list failed');
    select.replaceChildren(new Option('Models unavailable', ''));
    $('image-file').disabled = true;
    setText('service-status', 'service unavailable');
    setText('video-note', 'Video segmentation is unavailable: the model list could not be loaded.');
    $('video-note').hidden = false;
  }
  document.body.classList.toggle('no-video', !videoAvailable);
  updateVideoControls();
}

async function segmentImage(file) {
  if (!file) return;
  if (!models.length) {
    showError('no image model is loaded: start the service with --run RUN');
    document.body.dataset.image = 'error';
    return;
  }
  document.body.dataset.image = 'segmenting';
  setText('image-status', `Segmenting ${file.name}…`);
  $('download-labels').disabled = true;
  const model = selectedModel();
  try {
    const [result, bitmap] = await Promise.all([
      apiJSON(segmentPath(model), postBody(file, file.type)),
      // The browser may not decode every format the service does; then only the mask shows.
      createImageBitmap(file).catch(() => null),
    ]);
    showSegmentation(result, bitmap, model);
    picture.file = file;
    $('download-labels').disabled = false;
    setText('image-status', `${file.name}: ${result.width}×${result.height}, model ${result.model}.`);
    clearError();
    document.body.dataset.image = 'segmented';
  } catch (error) {
    showError(error, `Segmenting ${file.name} failed`);
    setText('image-status', '');
    $('download-labels').disabled = !picture.file; // the earlier result stays shown
    document.body.dataset.image = 'error';
  }
}

function showSegmentation(result, bitmap, model) {
  const { width, height } = result;
  sizeCanvases(['image-canvas', 'image-mask'], width, height);
  const context = $('image-canvas').getContext('2d');
  context.fillStyle = '#808080';
  context.fillRect(0, 0, width, height);
  if (bitmap) {
    context.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
  }

  const classes = (model && model.classes) || [];
  const colors = new Map(classes.map((c) => [c.id, c.color]));
  picture.names = new Map(classes.map((c) => [c.id, c.name]));
  for (const c of result.classes || []) picture.names.set(c.id, c.name);
  const colorOf = (id) => colors.get(id) || VOC[id & 255];

  Object.assign(picture, { labels: labelsOf(result), width, height });
  const mask = new ImageData(width, height);
  picture.labels.forEach((id, i) => {
    if (id < 0) return;
    const [r, g, b] = colorOf(id);
    // Pure black is the palettes' "background/unlabelled": leave the photo visible there.
    if (r || g || b) mask.data.set([r, g, b, 255], i * 4);
  });
  $('image-mask').getContext('2d').putImageData(mask, 0, 0);
  fitStage($('image-stage'), width, height, 560);
  updateOpacity();

  // The legend: classes present, largest first, with their share of the pixels.
  const total = width * height || 1;
  const present = (result.classes || []).filter((c) => c.pixels > 0).sort((a, b) => b.pixels - a.pixels);
  const items = present.map((c) => {
    const swatch = el('span', 'swatch');
    swatch.style.background = css(colorOf(c.id));
    const item = el('li');
    item.append(swatch, el('span', 'name', c.name), el('span', 'share', `${((100 * c.pixels) / total).toFixed(1)}%`));
    return item;
  });
  $('legend').replaceChildren(...(items.length ? items : [el('li', 'muted', 'No classes found.')]));
}

function updateOpacity() {
  const value = Number($('opacity').value);
  $('image-mask').style.opacity = String(value / 100);
  setText('opacity-value', `${value}%`);
}

function showHoverClass(event) {
  if (!picture.labels) return;
  const [x, y] = canvasPoint($('image-mask'), event);
  const id = picture.labels[y * picture.width + x];
  setText('hover-class', id < 0 ? 'none' : picture.names.get(id) || `class ${id}`);
}

async function downloadLabels() {
  if (!picture.file) return;
  $('download-labels').disabled = true;
  try {
    saveBlob(await apiBlob(segmentPath(selectedModel(), 'png'), postBody(picture.file, picture.file.type)), 'labels.png');
    clearError();
  } catch (error) {
    showError(error, 'Downloading the labels failed');
  } finally {
    $('download-labels').disabled = false;
  }
}

function setUpImageSection() {
  on('image-file', 'change', (event) => segmentImage(event.target.files[0]));
  on('opacity', 'input', updateOpacity);
  on('download-labels', 'click', downloadLabels);
  on('image-mask', 'pointermove', showHoverClass);
  on('image-mask', 'pointerleave', () => setText('hover-class', '—'));
  // Another model: segment the current image again with it.
  on('model', 'change', () => picture.file && segmentImage(picture.file));

  const drop = $('image-drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const files = [...event.dataTransfer.files];
    segmentImage(files.find((f) => f.type.startsWith('image/')) || files[0]);
  });
  // A file dropped anywhere else must not make the browser navigate away from the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  updateOpacity();
}

// ---------------------------------------------------------------- video section

// The session and the shown frame; `mask` holds one object id per pixel, row-major.
const state = {
  sessionId: null, frames: 0, current: 0, width: 0, height: 0, fps: 0,
  annotated: [], segmented: [], mask: null, frameBlob: null,
};

let frameTicket = 0;               // the newest frame request; older answers are dropped
let saveQueue = Promise.resolve(); // mask uploads, one after another
let stroke = null;                 // the brush stroke in progress
let picking = false;
let playing = null;                // a token per playback, so a new one stops the old loop
let propagation = null;            // { controller, cancelled } while a propagation runs
let maskImage = null;              // the coloured overlay, updated in place while painting

const setVideoState = (value) => { document.body.dataset.video = value; };

function applySession(info) {
  Object.assign(state, {
    sessionId: info.id, frames: info.frames, width: info.width, height: info.height,
    fps: info.fps, annotated: info.annotated || [], segmented: info.segmented || [],
  });
}

function updateVideoControls() {
  const ready = videoAvailable && Boolean(state.sessionId);
  const running = Boolean(propagation);
  $('video-file').disabled = !videoAvailable || running;
  for (const id of ['frame-slider', 'play', 'tool-brush', 'tool-eraser', 'brush-size', 'object-id',
    'add-object', 'download-masks', 'download-video']) $(id).disabled = !ready;
  $('tool-pick').disabled = !ready || !models.length;
  $('prev').disabled = !ready || state.current <= 0;
  $('next').disabled = !ready || state.current >= state.frames - 1;
  $('propagate').disabled = !ready || running;
  $('cancel').disabled = !running;
}

const tool = () => document.querySelector('input[name="tool"]:checked').value;
const selectedObject = () => Number($('object-id').value) || 1;
const updateSwatch = () => { $('object-swatch').style.background = css(VOC[selectedObject()]); };

// Offer objects 1…n in the selector, each shown in its palette colour.
function ensureObjects(n) {
  const select = $('object-id');
  for (let id = select.options.length + 1; id <= Math.min(n, 255); id++) {
    const option = new Option(`Object ${id}`, String(id));
    const [r, g, b] = VOC[id];
    option.style.backgroundColor = css(VOC[id]);
    option.style.color = 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff';
    select.add(option);
  }
  updateSwatch();
}

async function uploadVideo(file) {
  if (!file) return;
  stopPlaying();
  setVideoState('uploading');
  setText('video-status', `Uploading ${file.name}…`);
  try {
    const zip = file.name.toLowerCase().endsWith('.zip');
    const info = await apiJSON('/v1/sessions', postBody(file, file.type || (zip ? 'application/zip' : '')));
    applySession(info);
    Object.assign(state, { current: 0, mask: null, frameBlob: null });
    sizeCanvases(['frame-canvas', 'mask-canvas'], state.width, state.height);
    maskImage = new ImageData(state.width, state.height);
    fitVideoStage();
    $('frame-slider').max = String(Math.max(0, state.frames - 1));
    $('object-id').replaceChildren();
    ensureObjects(1);
    $('progress').value = 0;
    setText('progress-label', 'Not started.');
    await showFrame(0);
    setText('video-status', `${file.name}: ${state.frames} frames, ${state.width}×${state.height} at ${+state.fps.toFixed(2)} fps.`);
    clearError();
    setVideoState('ready');
  } catch (error) {
    showError(error, `Opening ${file.name} failed`);
    setText('video-status', '');
    setVideoState('error');
  }
  updateVideoControls();
}

function fitVideoStage() {
  if (state.sessionId) fitStage($('video-stage'), state.width, state.height, 600, 480);
}

// Show frame t: its image and its current mask, read back from the palette PNG as ids.
// Resolves false when a newer request overtook this one.
async function showFrame(t) {
  const ticket = ++frameTicket;
  const id = state.sessionId;
  await saveQueue; // an upload in flight for this frame must land before its mask is read
  const [frameBlob, maskBlob] = await Promise.all([
    apiBlob(`/v1/sessions/${id}/frames/${t}`),
    apiBlob(`/v1/sessions/${id}/masks/${t}`),
  ]);
  const [frame, maskBitmap] = await Promise.all([
    createImageBitmap(frameBlob),
    // No colour management or premultiplication, so palette colours arrive exactly.
    createImageBitmap(maskBlob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }),
  ]);
  if (ticket !== frameTicket || id !== state.sessionId) {
    frame.close();
    maskBitmap.close();
    return false;
  }
  const { width, height } = state;
  const scratch = Object.assign(document.createElement('canvas'), { width, height });
  const scratchContext = scratch.getContext('2d', { willReadFrequently: true });
  scratchContext.drawImage(maskBitmap, 0, 0);
  const pixels = scratchContext.getImageData(0, 0, width, height).data;
  const mask = new Uint8Array(width * height);
  let highest = 0;
  for (let i = 0; i < mask.length; i++) {
    const object = VOC_IDS.get((pixels[i * 4] << 16) | (pixels[i * 4 + 1] << 8) | pixels[i * 4 + 2]) || 0; // exact matches only
    mask[i] = object;
    if (object > highest) highest = object;
  }
  $('frame-canvas').getContext('2d').drawImage(frame, 0, 0, width, height);
  frame.close();
  maskBitmap.close();

  Object.assign(state, { current: t, mask, frameBlob });
  renderMask();
  ensureObjects(Math.max(1, highest));
  $('frame-slider').value = String(t);
  setText('frame-label', `frame ${t} / ${state.frames}`);
  updateVideoControls();
  return true;
}

// For buttons and the slider: show a frame, reporting failures in the banner.
async function goTo(t) {
  if (!state.sessionId) return;
  const target = Math.min(Math.max(t, 0), state.frames - 1);
  try {
    if (await showFrame(target)) clearError();
  } catch (error) {
    showError(error, `Loading frame ${target} failed`);
  }
}

// Repaint the overlay (or just the rectangle a stroke touched) from the id mask.
function renderMask(x0 = 0, y0 = 0, x1 = state.width - 1, y1 = state.height - 1) {
  if (!state.mask || !maskImage) return;
  const { width, mask } = state;
  const data = maskImage.data;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const i = y * width + x;
      const id = mask[i];
      data.set(VOC[id], i * 4);
      data[i * 4 + 3] = id ? 128 : 0;
    }
  }
  $('mask-canvas').getContext('2d').putImageData(maskImage, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}

// Paint (or erase) a disc of the brush radius; returns the rectangle it covered.
function stamp(cx, cy, radius, object, erase) {
  const { width, height, mask } = state;
  const x0 = Math.max(0, Math.floor(cx - radius)), x1 = Math.min(width - 1, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius)), y1 = Math.min(height - 1, Math.ceil(cy + radius));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      // r² + r rather than r² rounds the disc without one-pixel spurs at its four tips.
      if ((x - cx) ** 2 + (y - cy) ** 2 >= radius * radius + radius) continue;
      const i = y * width + x;
      if (!erase) mask[i] = object;
      else if (mask[i] === object) mask[i] = 0;
    }
  }
  return [x0, y0, x1, y1];
}

// A stroke segment: discs at most half a radius apart, so fast strokes stay continuous.
function paintLine(from, to) {
  const radius = Number($('brush-size').value);
  const steps = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) / Math.max(1, radius / 2)));
  let box = null;
  for (let s = 0; s <= steps; s++) {
    const x = from[0] + ((to[0] - from[0]) * s) / steps;
    const y = from[1] + ((to[1] - from[1]) * s) / steps;
    const r = stamp(x, y, radius, stroke.object, stroke.erase);
    box = box ? [Math.min(box[0], r[0]), Math.min(box[1], r[1]), Math.max(box[2], r[2]), Math.max(box[3], r[3])] : r;
  }
  renderMask(...box);
}

function onPointerDown(event) {
  if (!state.mask || event.button !== 0 || $('object-id').disabled) return;
  stopPlaying();
  const point = canvasPoint($('mask-canvas'), event);
  if (tool() === 'pick') return void pickAt(point[0], point[1]);
  event.preventDefault();
  try { $('mask-canvas').setPointerCapture(event.pointerId); } catch { /* a synthetic event's pointer cannot be captured */ }
  stroke = { frame: state.current, object: selectedObject(), erase: tool() === 'eraser', last: point };
  if (!propagation) setVideoState('annotating'); // until the stroke's upload lands
  paintLine(point, point);
}

function onPointerMove(event) {
  if (!stroke) return;
  const point = canvasPoint($('mask-canvas'), event);
  paintLine(stroke.last, point);
  stroke.last = point;
}

function onPointerUp() {
  if (!stroke) return;
  const { frame, object } = stroke;
  stroke = null;
  if (frame === state.current) saveObject(frame, object);
  else setVideoState('ready'); // the frame changed under the stroke: nothing to save
}

// Upload object `object`'s pixels of the shown mask as its mask on frame `frame`.
// The mask is read now; uploads run one after another so they land in order.
function saveObject(frame, object) {
  const { sessionId, width, height } = state;
  const bits = state.mask.map((id) => (id === object ? 1 : 0));
  const body = JSON.stringify({ object, rle: rleEncode(bits, height, width) });
  saveQueue = saveQueue.then(async () => {
    try {
      const info = await apiJSON(`/v1/sessions/${sessionId}/masks/${frame}`, {
        method: 'PUT', headers: { 'Content-Type': 'application/json' }, body,
      });
      if (sessionId === state.sessionId) applySession(info);
      clearError();
      if (!propagation) setVideoState('annotated');
    } catch (error) {
      showError(error, `Saving the mask of frame ${frame} failed`);
      setVideoState('error');
    }
  });
  return saveQueue;
}

// Pick: segment the frame with the chosen image model and give the selected object the
// 4-connected region of the clicked pixel's class.
async function pickAt(x, y) {
  if (picking || !state.frameBlob) return;
  const model = selectedModel();
  if (!model) return void showError('the pick tool needs an image model: start the service with --run RUN');
  picking = true;
  if (!propagation) setVideoState('annotating');
  const { sessionId, current: frame, frameBlob, width, height } = state;
  const object = selectedObject();
  setText('video-status', `Segmenting frame ${frame} with ${model.name}…`);
  try {
    const result = await apiJSON(segmentPath(model), postBody(frameBlob, frameBlob.type || 'image/png'));
    if (sessionId !== state.sessionId || frame !== state.current) { // the user moved on
      setText('video-status', '');
      setVideoState('ready');
      return;
    }
    if (result.width !== width || result.height !== height) {
      throw new Error(`the segmentation is ${result.width}×${result.height}, the frame ${width}×${height}`);
    }
    const labels = labelsOf(result);
    const region = floodFill(labels, width, x, y);
    for (const i of region) state.mask[i] = object;
    renderMask();
    const picked = (result.classes || []).find((c) => c.id === labels[y * width + x]);
    setText('video-status', `Picked ${region.length} pixels${picked ? ` of ${picked.name}` : ''} for object ${object}.`);
    await saveObject(frame, object);
  } catch (error) {
    showError(error, 'Picking a region failed');
    setText('video-status', '');
    setVideoState('error');
  } finally {
    picking = false;
  }
}

// The 4-connected pixels with the same label as (x, y), as indices.
function floodFill(labels, width, x, y) {
  const start = y * width + x;
  const target = labels[start];
  const seen = new Uint8Array(labels.length);
  const stack = [start];
  const region = [];
  seen[start] = 1;
  while (stack.length) {
    const i = stack.pop();
    region.push(i);
    const column = i % width;
    for (const n of [column > 0 ? i - 1 : -1, column < width - 1 ? i + 1 : -1, i - width, i + width]) {
      if (n < 0 || n >= labels.length || seen[n] || labels[n] !== target) continue;
      seen[n] = 1;
      stack.push(n);
    }
  }
  return region;
}

// ---------------------------------------------------------------- playback

async function startPlaying() {
  if (!state.sessionId || playing) return;
  const run = {};
  playing = run;
  setText('play', 'Pause');
  const interval = 1000 / Math.min(Math.max(state.fps || 10, 1), 60);
  let next = state.current >= state.frames - 1 ? 0 : state.current + 1;
  while (playing === run && next < state.frames) {
    const started = performance.now();
    try {
      await showFrame(next);
    } catch (error) {
      showError(error, `Loading frame ${next} failed`);
      break;
    }
    next += 1;
    const wait = interval - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
  if (playing === run) stopPlaying();
}

function stopPlaying() {
  playing = null;
  setText('play', 'Play');
}

// ---------------------------------------------------------------- propagation

async function propagate() {
  if (!state.sessionId || propagation) return;
  stopPlaying();
  await saveQueue; // the annotation just painted must be stored before XMem reads it
  const { sessionId, current: from } = state;
  const run = { controller: new AbortController(), cancelled: false };
  propagation = run;
  updateVideoControls();
  setVideoState('propagating');
  Object.assign($('progress'), { value: 0, max: 1 });
  setText('progress-label', `Propagating from frame ${from}…`);

  let end = null;
  try {
    const path = `/v1/sessions/${sessionId}/propagate?from=${from}&direction=forward`;
    const response = await api(path, { method: 'POST', signal: run.controller.signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const handle = (line) => {
      if (!line.trim()) return;
      const message = JSON.parse(line);
      if (message.end) end = message;
      else showProgress(message);
    };
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split('\n');
      buffer = lines.pop(); // an incomplete line waits for the next chunk
      lines.forEach(handle);
    }
    handle(buffer + decoder.decode());
  } catch (error) {
    end = run.cancelled && error.name === 'AbortError' ? { end: 'cancelled' } : { end: 'error', failure: error };
  }
  propagation = null;
  updateVideoControls();
  await finishPropagation(end || { end: 'error', error: 'the propagation stream ended without a result' }, sessionId);
}

function showProgress(message) {
  Object.assign($('progress'), { max: Math.max(1, message.total), value: message.done });
  const objects = Object.keys(message.objects || {}).length;
  setText('progress-label', `Frame ${message.frame}: ${message.done} / ${message.total} (${objects} object${objects === 1 ? '' : 's'})`);
}

async function finishPropagation(end, sessionId) {
  if (sessionId !== state.sessionId) return; // another video was opened meanwhile
  try {
    if (end.end === 'done') {
      applySession(await apiJSON(`/v1/sessions/${sessionId}`));
      $('progress').value = $('progress').max;
      setText('progress-label', 'Done: showing the last frame.');
      // Retry once if a slider move overtook it: the state must end on the last frame.
      if (!(await showFrame(state.frames - 1))) await showFrame(state.frames - 1);
      clearError();
      setVideoState('propagated');
    } else if (end.end === 'cancelled') {
      setText('progress-label', `Cancelled after ${$('progress').value} of ${$('progress').max} frames.`);
      await showFrame(state.current); // the shown frame may have been propagated already
      setVideoState('cancelled');
    } else {
      setText('progress-label', 'Failed.');
      showError(end.failure || end.error || 'unknown error', 'Propagation failed');
      setVideoState('error');
    }
  } catch (error) {
    showError(error, 'Loading the propagated masks failed');
    setVideoState('error');
  }
}

async function cancelPropagation() {
  const run = propagation;
  if (!run) return;
  run.cancelled = true;
  $('cancel').disabled = true;
  setText('progress-label', 'Cancelling…');
  try {
    await api(`/v1/sessions/${state.sessionId}/propagate`, { method: 'DELETE' });
  } catch (error) {
    showError(error, 'Cancelling the propagation failed');
  }
  run.controller.abort(); // stop reading: the service has stopped, the rest of the stream does not matter
}

async function downloadResult(format, filename, button) {
  if (!state.sessionId) return;
  const label = button.textContent;
  button.disabled = true;
  button.textContent = 'Preparing…';
  try {
    saveBlob(await apiBlob(`/v1/sessions/${state.sessionId}/result?format=${format}`), filename);
    clearError();
  } catch (error) {
    showError(error, `Downloading ${filename} failed`);
  } finally {
    button.textContent = label;
    updateVideoControls();
  }
}

function setUpVideoSection() {
  on('video-file', 'change', (event) => uploadVideo(event.target.files[0]));
  on('frame-slider', 'input', (event) => { stopPlaying(); goTo(Number(event.target.value)); });
  on('prev', 'click', () => { stopPlaying(); goTo(state.current - 1); });
  on('next', 'click', () => { stopPlaying(); goTo(state.current + 1); });
  on('play', 'click', () => (playing ? stopPlaying() : startPlaying()));
  on('brush-size', 'input', (event) => setText('brush-size-value', `${event.target.value} px`));
  on('object-id', 'change', updateSwatch);
  on('add-object', 'click', () => {
    const select = $('object-id');
    ensureObjects(select.options.length + 1);
    select.value = String(select.options.length);
    updateSwatch();
  });
  on('mask-canvas', 'pointerdown', onPointerDown);
  on('mask-canvas', 'pointermove', onPointerMove);
  on('mask-canvas', 'pointerup', onPointerUp);
  on('mask-canvas', 'pointercancel', onPointerUp);
  on('propagate', 'click', propagate);
  on('cancel', 'click', cancelPropagation);
  on('download-masks', 'click', (event) => downloadResult('davis', 'masks.zip', event.currentTarget));
  on('download-video', 'click', (event) => downloadResult('video', 'overlay.mp4', event.currentTarget));
  ensureObjects(1);
  updateVideoControls();
}

// ---------------------------------------------------------------- start

// For automated tests: the shown frame's ids and the session's state.
window.segkit = { shownMask: () => Array.from(state.mask || []), state };

function start() {
  on('error-close', 'click', clearError);
  // Whatever slips through still ends in the banner rather than only in the console.
  window.addEventListener('error', (event) => showError(event.message || 'unexpected error'));
  window.addEventListener('unhandledrejection', (event) => showError(event.reason || 'unexpected error'));
  window.addEventListener('resize', () => {
    fitVideoStage();
    if (picture.labels) fitStage($('image-stage'), picture.width, picture.height, 560);
  });
  setUpImageSection();
  setUpVideoSection();
  loadModels();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
