// Minimal typings for the parts of fs-ext that relaylog uses (the package ships none).
declare module 'fs-ext' {
  type FlockFlag = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
  export function flockSync(fd: number, flags: FlockFlag): void;
  export function flock(fd: number, flags: FlockFlag, cb: (err: NodeJS.ErrnoException | null) => void): void;
  const fsExt: { flockSync: typeof flockSync; flock: typeof flock };
  export default fsExt;
}
