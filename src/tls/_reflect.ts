/**
 * The Reflect metadata polyfill tsyringe (under @peculiar/x509) needs, as an ES module of its
 * own: Bun's bundler (`deno task build`) runs a bare CommonJS side-effect import *after* the
 * ES modules imported beside it, so `import "reflect-metadata"` directly above the x509 import
 * would run too late in the compiled binary; an ES module's body keeps its place in order.
 */
import "reflect-metadata";
