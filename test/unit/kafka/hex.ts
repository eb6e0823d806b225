/** Bytes written as hex, with spaces, newlines and `# comments` allowed (golden frames are annotated field by field). */
export const hex = (s: string): Buffer => {
  const digits = s.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not hex: ${digits}`);
  return Buffer.from(digits, 'hex');
};
