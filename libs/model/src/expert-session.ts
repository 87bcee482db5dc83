import * as ort from "onnxruntime-node";
import type { ExpertStoreContext } from "./expert-store";

/**
 * An expert's onnxruntime session as other libraries see it. Only this library imports
 * onnxruntime-node (.dependency-cruiser.cjs), so a store outside it (libs/cache) creates its
 * sessions through `createExpertSession` and names their type through this alias.
 */
export type ExpertSession = ort.InferenceSession;

/** A session over an expert's verified bytes, with the runtime's session options. */
export function createExpertSession(bytes: Uint8Array, ctx: ExpertStoreContext): Promise<ExpertSession> {
  return ort.InferenceSession.create(bytes, ctx.sessionOptions);
}
