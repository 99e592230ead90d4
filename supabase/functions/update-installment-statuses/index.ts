// Supabase Edge Function entry: the same handler as the Node server, served by Deno.
import { createEdgeHandler } from '../../../src/http/edge.ts';

const handler = await createEdgeHandler(Deno.env.toObject());
Deno.serve({ port: handler.port }, handler.fetch);
