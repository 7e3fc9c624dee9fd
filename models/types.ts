/**
 * The contract between the pipeline and the models.
 *
 * The pipeline decodes an image into tightly packed 8-bit RGB pixels at the size the manifest asks
 * for (`RgbImage`); a `Classifier` turns a batch of those into `Prediction`s. How the pixels become
 * a tensor (layout, normalization) and which runtime executes it (tfjs on wasm or node, ONNX
 * Runtime) is the backend's business, chosen by the manifest: the pipeline never knows.
 */

/** Runtime formats a manifest can name. */
export type ModelFormat = 'tfjs-layers' | 'tfjs-graph' | 'onnx';

/** What executes a model: TF.js, or ONNX Runtime (for `tfjs-layers`, after converting it to ONNX). */
export type ModelRuntime = 'tfjs' | 'onnxruntime';

/** How the image is fitted to the model's square input. `fill` stretches, `cover` center-crops. */
export type ResizeMode = 'fill' | 'cover';

export interface ModelManifest {
  /** Registry id, e.g. `mobilenet-v1-0.75-224-tfjs`. */
  readonly id: string;
  readonly format: ModelFormat;
  /**
   * Where the model lives: a directory or file path, an `http(s)://` URL or an `s3://bucket/key`
   * URL. For tfjs it points at `model.json`; for ONNX at the `.onnx` file.
   */
  readonly location: string;
  /**
   * Default: `onnxruntime` for `onnx`, `tfjs` for the tfjs formats. `onnxruntime` on a `tfjs-layers`
   * model converts it to ONNX when it is loaded; the `.onnx` is kept in the model cache, keyed by the
   * contents of model.json and its weight files, and reused by the next load.
   */
  readonly runtime?: ModelRuntime;
  /** Optional sha256 (hex) of the main model file, checked after a download. */
  readonly sha256?: string;
  readonly input: {
    readonly width: number;
    readonly height: number;
    /** Tensor layout the runtime expects. */
    readonly layout: 'NHWC' | 'NCHW';
    /** Input tensor / placeholder name (graph and ONNX models). */
    readonly name?: string;
    readonly resize: ResizeMode;
    /** Per channel: value = (pixel / scale - mean) / std. */
    readonly normalization: {
      readonly scale: number;
      readonly mean: readonly [number, number, number];
      readonly std: readonly [number, number, number];
    };
  };
  readonly output: {
    /** Output node name (graph and ONNX models). */
    readonly name?: string;
    readonly kind: 'probabilities' | 'logits';
    /** Number of leading outputs that are not ImageNet classes (1 for a "background" class). */
    readonly offset: number;
  };
  /** Class names in output order (after removing `offset`). */
  readonly labels: readonly string[];
}

/** Decoded pixels: `width * height * 3` bytes, row-major, RGB, no alpha. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export interface ClassScore {
  /** Full label, e.g. `goldfish, Carassius auratus`. */
  readonly label: string;
  /** Probability in [0, 1] (softmax applied for logit models). */
  readonly score: number;
  /** ImageNet class index (0..999), background offset already removed. */
  readonly index: number;
}

export interface Prediction {
  /** Short class name: the text before the first comma of the top-1 label. */
  readonly label: string;
  readonly score: number;
  readonly top5: readonly ClassScore[];
}

export interface Classifier {
  readonly manifest: ModelManifest;
  /** Runtime actually used, e.g. `tfjs-wasm`, `tfjs-node`, `onnxruntime-node`. */
  readonly backend: string;
  /** Classifies a batch; `images[i]` must be `manifest.input.width x height`. Order is preserved. */
  classify(images: readonly RgbImage[]): Promise<Prediction[]>;
  /** Frees the session / tensors. Idempotent. */
  dispose(): Promise<void>;
}
