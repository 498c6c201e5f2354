/** The Reflect metadata polyfill as an ES module of its own, imported before @peculiar/x509:
 * see src/tls/_reflect.ts (Bun's bundler runs bare CommonJS side-effect imports late). */
import "reflect-metadata";
